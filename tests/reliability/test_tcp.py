"""TCP: one client per server, later connections refused with a clear message; an optional token.

Finding 2 of issue 14: pygls' start_tcp swapped the reply writer for every new connection, so a second
client took over the first one's session. The real server as a subprocess, no model loaded.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from .lsp_process import MISSING_MODEL, ROOT, SERVER, TcpPeer, free_port, server_env


def listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:port (state 0A in /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if local == f"0100007F:{port:04X}" and state == "0A":
            return True
    return False


def start_tcp(port: int, **env: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*SERVER, "--tcp", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=server_env(**env),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if listening(port):  # not a test connection: that would be the session's client
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the TCP server never listened")


@pytest.fixture
def tcp_server():
    port = free_port()
    proc = start_tcp(port)
    yield port, proc
    proc.kill()
    proc.wait(10)


def test_second_client_is_refused_and_first_keeps_its_session(tcp_server):
    port, proc = tcp_server
    first = TcpPeer(port)
    assert "result" in first.initialize(MISSING_MODEL, initialized=False)
    first.open("file:///tcp/first.py", "secret = 1\n")
    second = TcpPeer(port)
    answer = second.initialize({}, initialized=False)
    assert answer is not None and "error" in answer, answer
    assert "another client" in answer["error"]["message"]
    assert second.wait(lambda: second.closed, timeout=10)  # the server hung up on it
    # The first session is untouched: its documents are still open and it gets its own answers.
    params = {
        "textDocument": {"uri": "file:///tcp/first.py"},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 6}},
        "context": {"diagnostics": []},
    }
    actions = first.call("textDocument/codeAction", params, timeout=20)
    assert actions is not None and actions["result"], actions
    assert not second.notifications or all("secret" not in str(n) for n in second.notifications)
    assert proc.poll() is None  # a refused client does not stop the server
    first.close()
    assert proc.wait(20) == 1  # the session's client left without shutdown/exit


def test_token_is_required_when_set():
    port = free_port()
    proc = start_tcp(port, DIFFGEM_LSP_TOKEN="s3cret-token")
    try:
        intruder = TcpPeer(port)
        answer = intruder.initialize({}, initialized=False)
        assert answer is not None and "token" in answer["error"]["message"], answer
        assert intruder.wait(lambda: intruder.closed, timeout=10)
        wrong = TcpPeer(port)
        assert "error" in wrong.initialize({"token": "guess"}, initialized=False)
        client = TcpPeer(port)
        answer = client.initialize({**MISSING_MODEL, "token": "s3cret-token"}, initialized=False)
        assert answer is not None and "result" in answer, answer
        # The token is not a setting: no "unknown setting" warning for it.
        assert not any("token" in str(n) for n in client.messages("window/showMessage"))
        client.call("shutdown", timeout=20)
        client.notify("exit")
        assert proc.wait(20) == 0
    finally:
        proc.kill()
