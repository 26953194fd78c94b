"""A raw LSP client for the reliability tests: the real server as a subprocess, spoken to byte by byte.

pytest-lsp cannot send a broken frame or an ill-typed param, so this client writes frames itself and
reads the server's answers with the server's own frame parser. Test helper only; no assertions here.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from diffgem_lsp.framing import FrameParser, Message

ROOT = Path(__file__).resolve().parents[2]
# The command that starts the server; DIFFGEM_RELIABILITY_SERVER swaps it (e.g. for an older build).
SERVER = os.environ.get("DIFFGEM_RELIABILITY_SERVER", f"{sys.executable} -m diffgem_lsp").split()
# How editors start the server (editors/*: the `diffgem-lsp` console script), unlike `python -m`,
# which puts the working directory first on sys.path of the server process itself.
CONSOLE_SCRIPT = os.environ.get(
    "DIFFGEM_RELIABILITY_SCRIPT", str(Path(sys.executable).with_name("diffgem-lsp"))
).split()
MISSING_MODEL = {
    "modelPath": "/nonexistent/diffgem-checkpoint"
}  # the worker fails fast, no torch work
FAST = {"invokedSteps": 8, "automaticSteps": 4, "debounceMs": 0, "seed": 0}


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)
    return env


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ProcessLookupError(pid)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class Peer:
    """Frames in and out over any pair of byte streams; collects what the server sends."""

    def __init__(self, write: Any, read: Any) -> None:
        self._write, self._read = write, read
        self.responses: dict[Any, list[dict]] = defaultdict(list)
        self.notifications: list[dict] = []
        self.server_requests: list[dict] = []
        self.unparsed: list[Any] = []
        self.closed = False
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        parser = FrameParser()
        while True:
            try:
                data = self._read(1 << 16)
            except OSError:
                data = b""
            events = parser.feed(data) if data else parser.stall(60)
            with self._cond:
                for event in events:
                    self._collect(event)
                if not data:
                    self.closed = True
                self._cond.notify_all()
            if not data:
                return

    def _collect(self, event: Any) -> None:
        value = event.value if isinstance(event, Message) else None
        if not isinstance(value, dict):
            self.unparsed.append(event)
        elif "method" in value and "id" in value:
            self.server_requests.append(value)
            self.send({"jsonrpc": "2.0", "id": value["id"], "result": None})
        elif "method" in value:
            self.notifications.append(value)
        else:
            self.responses[value.get("id")].append(value)

    # -- sending -------------------------------------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        self._write(data)

    def send(self, message: Any) -> None:
        self.send_bytes(frame(message))

    def request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    # -- waiting -------------------------------------------------------------------------------
    # Default liveness bounds: generous, as a first answer includes the server's start (imports) on a
    # loaded machine; they only stop a broken test (a closed stream ends a wait at once).
    def wait(self, predicate: Any, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not predicate()):
                    return bool(predicate())
                self._cond.wait(min(left, 0.5))
            return True

    def response(self, msg_id: Any, timeout: float = 120.0) -> dict | None:
        """The first answer to `msg_id`, or None when none came within `timeout` (a liveness bound)."""
        self.wait(lambda: bool(self.responses.get(msg_id)), timeout)
        answers = self.responses.get(msg_id)
        return answers[0] if answers else None

    def call(self, method: str, params: Any = None, timeout: float = 120.0) -> dict | None:
        return self.response(self.request(method, params), timeout)

    def messages(self, method: str) -> list[dict]:
        with self._cond:
            return [n for n in self.notifications if n.get("method") == method]

    # -- the LSP session -----------------------------------------------------------------------
    def initialize(
        self, options: Any = None, initialized: bool = True, **params: Any
    ) -> dict | None:
        answer = self.call(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": {},
                "initializationOptions": options,
                **params,
            },
        )
        if initialized:
            self.notify("initialized", {})
        return answer

    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        doc = {"uri": uri, "languageId": language, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})

    def status(self, timeout: float = 120.0) -> dict:
        answer = self.call("workspace/executeCommand", {"command": "diffgem.status"}, timeout)
        return (answer or {}).get("result") or {}

    def wait_state(self, states: tuple[str, ...], timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        current: dict = {}
        while time.monotonic() < deadline:
            current = self.status()
            if current.get("state") in states:
                return current
            time.sleep(0.1)
        raise AssertionError(f"backend never reached {states}: {current}")


class LspProcess(Peer):
    """The real server over stdio."""

    def __init__(
        self,
        *args: str,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.log = log
        stderr = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*(command or SERVER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd or ROOT,
            env=env or server_env(),
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        stdin, stdout = self.proc.stdin, self.proc.stdout

        def write(data: bytes) -> None:
            stdin.write(data)
            stdin.flush()

        super().__init__(write, stdout.read1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit(self, timeout: float = 60.0) -> int | None:
        """shutdown + exit; the exit code, or None if the process did not end in time."""
        try:
            self.call("shutdown", None, timeout)
            self.notify("exit")
            return self.proc.wait(timeout)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class TcpPeer(Peer):
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        super().__init__(self.sock.sendall, self.sock.recv)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
