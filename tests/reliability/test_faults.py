"""Fault injection with the real model: a hostile working directory, a stalled worker, lone surrogates, SIGTERM.

One server for the module, started as editors start it (the `diffgem-lsp` script) from a directory
holding `diffgem_model/__init__.py`, `diffgem_protocol.py` and `queue.py` that leave a marker if ever
imported. Findings 1, 5, 9 and 10 of issue 14.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from examples.editor_client import Hole
from tests.lsp.oracle import INFILL_CANDIDATES

from .lsp_process import CONSOLE_SCRIPT, FAST, LspProcess, alive

HOSTILE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported from the user's project")
raise SystemExit("hostile module imported")
"""
LONG = "def f(x):\n    return x\n"


def inline(uri: str, position: dict, automatic: bool = False) -> dict:
    return {
        "textDocument": {"uri": uri},
        "position": position,
        "context": {"triggerKind": 2 if automatic else 1},
    }


def at(hole: Hole, line_offset: int = 0) -> dict:
    return {"line": hole.line + line_offset, "character": hole.character}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-project")
    marker = root / "MARKER"
    (root / "diffgem_model").mkdir()
    (root / "diffgem_model" / "__init__.py").write_text(HOSTILE.format(marker=str(marker)))
    (root / "diffgem_protocol.py").write_text(HOSTILE.format(marker=str(marker)))
    (root / "queue.py").write_text(HOSTILE.format(marker=str(marker)))
    return root, marker


@pytest.fixture(scope="module")
def server(hostile, tmp_path_factory):
    root, _ = hostile
    log = tmp_path_factory.mktemp("log") / "server.log"
    lsp = LspProcess(cwd=root, log=log, command=CONSOLE_SCRIPT)
    assert "result" in lsp.initialize(FAST)
    lsp.wait_state(("ready", "error"))
    yield lsp
    lsp.kill()


@pytest.fixture(scope="module")
def filled(server) -> Hole:
    """The first candidate hole the shipped model fills (tests/lsp/oracle.py's list), asked over LSP."""
    for i, marked in enumerate(INFILL_CANDIDATES):
        hole = Hole.from_marked(marked)
        uri = f"file:///hostile/candidate{i}.py"
        server.open(uri, hole.text)
        answer = server.call("textDocument/inlineCompletion", inline(uri, at(hole)), 120)
        if answer is not None and (answer.get("result") or {}).get("items"):
            return hole
    raise AssertionError("the model filled none of the candidate holes")


def test_nothing_from_the_working_directory_runs(server, hostile, filled):
    _, marker = hostile
    status = server.status()
    assert status.get("state") == "ready", (status, server.log.read_text()[-2000:])
    assert filled.text  # the worker, started from this directory, filled a hole
    assert not marker.exists(), marker.read_text()


def test_lone_surrogate_does_not_break_requests(server, filled):
    uri = "file:///hostile/surrogate.py"
    server.open(uri, 'bad = "\ud800"\n' + filled.text)
    answer = server.call("textDocument/inlineCompletion", inline(uri, at(filled, 1)), 120)
    assert answer is not None and "result" in answer, answer
    assert answer["result"]["items"], answer  # the model still runs on this document


def test_stalled_worker_is_detected_and_replaced(server, filled):
    uri = "file:///hostile/stall.py"
    server.open(uri, filled.text)
    stopped = server.status()["pid"]
    os.kill(stopped, signal.SIGSTOP)
    try:
        automatic = server.request(
            "textDocument/inlineCompletion", inline(uri, at(filled), automatic=True)
        )
        invoked = server.request("textDocument/inlineCompletion", inline(uri, at(filled)))
        # Liveness bounds, not speed figures: without detection these waited forever.
        auto_answer = server.response(automatic, timeout=90)
        invoked_answer = server.response(invoked, timeout=90)
        # The automatic one is superseded by the invoked one (-32800) or answers empty; never an error.
        assert auto_answer is not None, "automatic request unanswered"
        assert auto_answer.get("result") == {"items": []} or auto_answer["error"]["code"] == -32800
        assert invoked_answer is not None and invoked_answer["error"]["code"] == -32803
        assert "not responding" in invoked_answer["error"]["message"], invoked_answer
        replaced = server.wait_state(("ready",))
        assert replaced["pid"] != stopped
        assert not alive(stopped)  # the stalled one was killed, not left behind
        uri = "file:///hostile/after-stall.py"
        server.open(uri, filled.text)
        answer = server.call("textDocument/inlineCompletion", inline(uri, at(filled)), 120)
        assert answer is not None and answer["result"]["items"], answer
    finally:
        if alive(stopped):
            os.kill(stopped, signal.SIGKILL)


def test_sigterm_takes_the_busy_worker_down(server):
    uri = "file:///hostile/long.py"
    server.open(uri, LONG)
    # A long generation: the entropy rule over many steps with the early stop off keeps the worker
    # busy (one token per step under the confidence rule still ends once every position is
    # committed: a short fill could end before the status below looked, on a loaded machine).
    server.notify(
        "workspace/didChangeConfiguration",
        {"settings": {"invokedSteps": 4096, "sampler": "entropy", "earlyStop": False}},
    )
    worker = server.status()["pid"]
    server.request("textDocument/inlineCompletion", inline(uri, {"line": 1, "character": 11}))
    deadline = time.monotonic() + 120  # a hang guard only
    while (busy := server.status().get("busy")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert busy is not None, "the worker never started generating"
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(20)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the worker outlived the server"
