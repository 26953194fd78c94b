"""The worker protocol: round trips, version check, and a real worker answering over its pipes."""

import ast
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import diffgem_protocol as P
from diffgem_lsp.backends.base import BackendError
from diffgem_lsp.backends.local import LocalWorker
from diffgem_lsp.settings import Settings


def run_worker(model: str, lines: list[bytes], answers: int) -> tuple[int, list[dict]]:
    """Feed request lines to a real worker process and read events until `answers` requests were
    answered (result, cancelled or error); then close its stdin, which ends it. Exit code, events."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffgem_model.worker", "--model", model, "--device", "cpu"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"".join(lines))
    proc.stdin.flush()
    events: list[dict] = []
    try:
        while sum(e["event"] in ANSWERS for e in events) < answers:
            line = proc.stdout.readline()
            assert line, f"the worker exited early: {events}"
            events.append(P.decode(line))
    finally:
        proc.stdin.close()
        code = proc.wait(timeout=120)
    return code, events


ANSWERS = (P.EV_RESULT, P.EV_CANCELLED, P.EV_ERROR)


def test_generate_request_round_trip():
    request = P.GenerateRequest(
        id=7,
        params=P.GenerateParams(prefix="a", suffix="b", sampler=P.SamplerSettings(max_steps=3)),
        stream=True,
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
                id=1,
                params=P.GenerateParams(prefix="def f(x):\n    return ", suffix="\n", max_tokens=8),
            ).to_message()
        ),
        P.encode(P.request(P.OP_CANCEL, id=2)),
        P.encode(
            P.GenerateRequest(
                id=2, params=P.GenerateParams(prefix="x = ", suffix="\n")
            ).to_message()
        ),
    ]
    _, events = run_worker(str(tiny_checkpoint), lines, answers=3)
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
    lines = [P.encode(P.GenerateRequest(id=1, params=P.GenerateParams("x", "")).to_message())]
    code, events = run_worker(str(tmp_path / "nope"), lines, answers=1)
    assert events[1]["event"] == P.EV_LOAD_FAILED and "not found" in events[1]["message"]
    assert events[2]["event"] == P.EV_ERROR and "model not loaded" in events[2]["message"]
    assert code == 0


# -- the boundary: the server and the worker meet only in diffgem_protocol --------------------------
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {  # import name -> folder
    "diffgem_lsp": ROOT / "diffgem_lsp",
    "diffgem_model": ROOT / "model",
    "diffgem_kernels": ROOT / "kernels",
    "diffgem_protocol": ROOT / "diffgem_protocol",
}
SERVER_SIDE = {"diffgem_lsp"}
WORKER_SIDE = {"diffgem_model", "diffgem_kernels"}


def modules() -> dict[str, Path]:
    """Every module of the four packages by dotted name (model/train's data folders hold no code)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            if "data" in rel.parts or "embedded" in rel.parts:
                continue
            parts = [package, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Absolute names a module imports (at any depth in its code: lazy imports count too)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import pipelines` imports a submodule; any other name comes from `target` itself.
            # (A parent package's own import, implied by any submodule's, is not counted.)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def top(name: str) -> str:
    return name.split(".")[0]


def test_server_and_worker_meet_only_in_the_protocol_package():
    known = modules()
    assert "diffgem_lsp.session" in known and "diffgem_model.worker" in known  # the walk found code
    crossings = []
    for name, path in known.items():
        tops = {top(i) for i in imports_of(name, path, known)}
        side = top(name)
        if side in SERVER_SIDE:
            bad = tops & (WORKER_SIDE | {"torch", "transformers", "triton"})
        elif side in WORKER_SIDE:
            bad = tops & (SERVER_SIDE | {"pygls", "lsprotocol"})
        else:  # the protocol: standard library only
            bad = tops & (SERVER_SIDE | WORKER_SIDE | {"torch", "pygls", "lsprotocol"})
        crossings += [f"{name} imports {b}" for b in sorted(bad)]
    assert not crossings, crossings


def test_the_import_graph_has_no_cycle():
    known = modules()
    graph = {
        name: {i for i in imports_of(name, path, known) if i in known and i != name}
        for name, path in known.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


class OtherInstallWorker(LocalWorker):
    """A "worker" from another install: it says hello in protocol version 99, then waits."""

    def command(self) -> list[str]:
        hello = json.dumps({"v": 99, "event": "hello", "pid": 0, "protocol": 99})
        return [sys.executable, "-c", f"import time; print({hello!r}, flush=True); time.sleep(60)"]


async def test_a_protocol_mismatch_restarts_nothing_and_says_why_once():
    states: list[tuple[str, str]] = []
    backend = OtherInstallWorker(Settings(), on_state=lambda s, m: states.append((s, m)))
    await backend.start()
    with pytest.raises(BackendError, match="protocol version 99"):
        await backend.wait_ready(timeout=60)
    with pytest.raises(BackendError, match="protocol version 99"):  # asking again starts nothing
        await backend.generate(P.GenerateParams("x = ", "\n"))
    assert [s for s, _ in states] == ["loading", "error"], states  # one error, no restart
    assert "reinstall" in states[-1][1]
    # The killed process's exit is not taken for a crash: wait until its reader and watcher tasks
    # have seen it and ended (not a fixed sleep, which a loaded machine could outlast).
    for _ in range(6000):  # a hang guard only (60 s or more)
        if not backend._tasks:
            break
        await asyncio.sleep(0.01)
    assert not backend._tasks
    assert backend.state == "error" and backend._proc is None and not backend._crashes
    await backend.stop()
