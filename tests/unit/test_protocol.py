"""The worker protocol: round trips, version check, and a real worker answering over its pipes."""

import json
import subprocess
import sys

import pytest

from diffgem_lsp import protocol as P


def run_worker(model: str, lines: list[bytes]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Feed request lines to a real worker process; return it and the events it wrote."""
    proc = subprocess.run(
        [sys.executable, "-m", "diffgem_model.worker", "--model", model, "--device", "cpu"],
        input=b"".join(lines),
        capture_output=True,
        timeout=120,
    )
    return proc, [P.decode(line) for line in proc.stdout.splitlines()]


def test_generate_request_round_trip():
    request = P.GenerateRequest(
        id=7, prefix="a", suffix="b", old_text=None, sampler=P.SamplerParams(max_steps=3)
    )
    message = P.decode(P.encode(request.to_message()))
    assert P.GenerateRequest.from_message(message) == request


@pytest.mark.parametrize(
    "line", [b"not json", b"[1]", json.dumps({"v": 99, "op": "status"}).encode()]
)
def test_bad_lines_are_protocol_errors(line):
    with pytest.raises(P.ProtocolError):
        P.decode(line)


def test_worker_over_pipes(tiny_checkpoint):
    lines = [
        P.encode(P.request(P.OP_STATUS)),
        b"garbage\n",
        P.encode(
            P.GenerateRequest(
                id=1, prefix="def f(x):\n    return ", suffix="\n", max_tokens=8
            ).to_message()
        ),
        P.encode(P.request(P.OP_CANCEL, id=2)),
        P.encode(P.GenerateRequest(id=2, prefix="x = ", suffix="\n").to_message()),
    ]
    proc, events = run_worker(str(tiny_checkpoint), lines)
    names = [e["event"] for e in events]
    assert names[0] == P.EV_HELLO
    assert P.EV_READY in names and P.EV_STATUS in names
    assert any(e["event"] == P.EV_ERROR and "bad request" in e["message"] for e in events)
    result = next(e for e in events if e["event"] == P.EV_RESULT)
    assert result["id"] == 1 and result["result"]["forwards"] >= 1
    assert any(
        e["event"] == P.EV_CANCELLED and e["id"] == 2 for e in events
    )  # cancelled before it started


def test_worker_reports_a_missing_checkpoint_and_keeps_answering(tmp_path):
    lines = [P.encode(P.GenerateRequest(id=1, prefix="x", suffix="").to_message())]
    proc, events = run_worker(str(tmp_path / "nope"), lines)
    assert events[1]["event"] == P.EV_LOAD_FAILED and "not found" in events[1]["message"]
    assert events[2]["event"] == P.EV_ERROR and "model not loaded" in events[2]["message"]
    assert proc.returncode == 0
