"""Fault injection with the real model: a hostile working directory, a stalled worker, lone surrogates, SIGTERM.

One server for the module, started from a directory that holds `diffgem_model/__init__.py` and
`queue.py` which would leave a marker if ever imported. Findings 1, 5, 9 and 10 of issue 14.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from .lsp_process import FAST, LspProcess, alive

GREETING = 'def greet(name):\n    message = "Hello, "\n    return message\n'
HOLE = {"line": 1, "character": GREETING.splitlines()[1].index('Hello, "') + len("Hello, ")}
HOSTILE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported from the user's project")
raise SystemExit("hostile module imported")
"""


def inline(uri: str, automatic: bool = False, position: dict | None = None) -> dict:
    return {
        "textDocument": {"uri": uri},
        "position": position or HOLE,
        "context": {"triggerKind": 2 if automatic else 1},
    }


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
    lsp = LspProcess(cwd=root, log=tmp_path_factory.mktemp("log") / "server.log")
    assert "result" in lsp.initialize(FAST)
    lsp.wait_state(("ready", "error"))
    yield lsp
    lsp.kill()


def test_nothing_from_the_working_directory_runs(server, hostile):
    _, marker = hostile
    status = server.status()
    assert status.get("state") == "ready", (status, server.log.read_text()[-2000:])
    uri = "file:///hostile/greet.py"
    server.open(uri, GREETING)
    answer = server.call("textDocument/inlineCompletion", inline(uri), timeout=120)
    assert answer is not None and answer["result"]["items"], answer  # the model filled the hole
    assert not marker.exists(), marker.read_text()


def test_lone_surrogate_does_not_break_requests(server):
    uri = "file:///hostile/surrogate.py"
    text = 'bad = "\ud800"\n' + GREETING
    server.open(uri, text)
    position = {"line": HOLE["line"] + 1, "character": HOLE["character"]}
    answer = server.call(
        "textDocument/inlineCompletion", inline(uri, position=position), timeout=120
    )
    assert answer is not None and "result" in answer, answer
    assert answer["result"]["items"], answer  # the model still runs on this document


def test_stalled_worker_is_detected_and_replaced(server):
    uri = "file:///hostile/stall.py"
    server.open(uri, GREETING)
    stopped = server.status()["pid"]
    os.kill(stopped, signal.SIGSTOP)
    try:
        automatic = server.request("textDocument/inlineCompletion", inline(uri, automatic=True))
        invoked = server.request("textDocument/inlineCompletion", inline(uri))
        # Liveness bound, not a speed figure: without detection these waited forever.
        auto_answer = server.response(automatic, timeout=90)
        invoked_answer = server.response(invoked, timeout=90)
        assert auto_answer is not None and auto_answer.get("result") == {"items": []}, auto_answer
        assert invoked_answer is not None and invoked_answer["error"]["code"] == -32803
        assert "not responding" in invoked_answer["error"]["message"]
        replaced = server.wait_state(("ready",))
        assert replaced["pid"] != stopped
        assert not alive(stopped)  # the stalled one was killed, not left behind
        answer = server.call("textDocument/inlineCompletion", inline(uri), timeout=120)
        assert answer is not None and answer["result"]["items"], answer
    finally:
        if alive(stopped):
            os.kill(stopped, signal.SIGKILL)


def test_sigterm_takes_the_busy_worker_down(server):
    uri = "file:///hostile/long.py"
    server.open(uri, GREETING)
    # A long generation: one token per step over many steps keeps the worker busy.
    server.notify(
        "workspace/didChangeConfiguration",
        {"settings": {"invokedSteps": 4096, "confidenceThreshold": 2.0, "earlyStop": False}},
    )
    worker = server.status()["pid"]
    server.request("textDocument/inlineCompletion", inline(uri))
    deadline = time.monotonic() + 30
    while server.status().get("busy") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.status().get("busy") is not None, "the worker never started generating"
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(20)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the worker outlived the server"
