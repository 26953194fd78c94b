"""A real diffgem-lsp with `backend: "vllm"` against the loopback vLLM stand-in (real embedded model).

The editor's request goes LSP -> server -> HTTP -> stand-in -> model and back; a rejected key is one
message, never a log line with the key in it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from examples.editor_client import EditorSession, Hole

from ..backends.vllm_standin import EmbeddedModel, StandinServer, dead_port_url
from .conftest import TEST_OPTIONS
from .test_shared import CANDIDATES, has_torch

KEY = "sk-remote-test-5f1e0c"


@pytest.fixture(scope="module")
def model() -> EmbeddedModel:
    return EmbeddedModel()


@pytest.fixture
def server(model):
    srv = StandinServer(model, api_key=KEY).start()
    yield srv
    srv.stop()


def window(options: dict, log_file: str) -> EditorSession:
    session = EditorSession(
        {**TEST_OPTIONS, **options},
        server_command=[
            sys.executable,
            "-m",
            "diffgem_lsp",
            "--log-level",
            "debug",
            "--log-file",
            log_file,
        ],
    )
    session.messages = []  # type: ignore[attr-defined]

    @session.client.feature(types.WINDOW_SHOW_MESSAGE)
    def _message(params: types.ShowMessageParams) -> None:
        session.messages.append(params.message)  # type: ignore[attr-defined]

    return session


async def test_inline_completion_through_vllm(server, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFGEM_TEST_KEY", KEY)
    s = window(
        {"backend": "vllm", "endpoint": server.url, "apiKeyEnv": "DIFFGEM_TEST_KEY"},
        str(tmp_path / "log"),
    )
    await s.start()
    await s.wait_ready()
    filled: tuple[Hole, str] | None = None
    for i, hole in enumerate(CANDIDATES):
        uri = f"file:///tmp/remote/h{i}.py"
        s.open(uri, hole.text, "python")
        items = await s.inline(uri, hole.line, hole.character)
        if items and items[0].insert_text:
            filled = hole, items[0].insert_text
            break
    assert filled is not None, "the model behind the stand-in filled none of the candidate holes"
    sent = [b for b in server.record.bodies if b.get("stream")]
    assert sent and all("suffix" not in b and b["prompt"].endswith("<fim_middle>") for b in sent)
    status = await s.worker_status()
    assert status["backend"] == "vllm" and status["capabilities"]["pinning"] is True
    assert KEY not in (tmp_path / "log").read_text()
    await s.stop()


async def test_rejected_key_is_one_message_and_never_logged(server, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFGEM_TEST_KEY", "sk-not-the-key-9a8b")
    s = window(
        {"backend": "vllm", "endpoint": server.url, "apiKeyEnv": "DIFFGEM_TEST_KEY"},
        str(tmp_path / "log"),
    )
    await s.start()
    hole = CANDIDATES[0]
    s.open("file:///tmp/remote/k.py", hole.text, "python")
    for _ in range(3):
        with pytest.raises(JsonRpcException, match="rejected the API key"):
            await s.inline("file:///tmp/remote/k.py", hole.line, hole.character)
    # Wait for the message rather than sleep a fixed time (a hang guard of 60 s, nothing is timed).
    for _ in range(3000):
        if any("rejected the API key" in m for m in s.messages):  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.02)
    assert len([m for m in s.messages if "rejected the API key" in m]) == 1, s.messages  # type: ignore[attr-defined]
    assert "sk-not-the-key" not in (tmp_path / "log").read_text()
    await s.stop()


async def test_plain_http_off_loopback_is_refused(tmp_path):
    s = window({"backend": "vllm", "endpoint": "http://192.0.2.10:8000"}, str(tmp_path / "log"))
    await s.start()
    hole = CANDIDATES[0]
    s.open("file:///tmp/remote/t.py", hole.text, "python")
    with pytest.raises(JsonRpcException, match="use https://"):
        await s.inline("file:///tmp/remote/t.py", hole.line, hole.character)
    await s.stop()


async def test_remote_down_falls_back_to_the_local_worker(tmp_path):
    s = window(
        {"backend": "vllm", "endpoint": dead_port_url(), "remoteFallback": True},
        str(tmp_path / "log"),
    )
    await s.start()
    filled = None
    for i, hole in enumerate(CANDIDATES):
        uri = f"file:///tmp/remote/f{i}.py"
        s.open(uri, hole.text, "python")
        # Invoked: the first one waits for the fallback worker to load the model.
        items = await s.inline(uri, hole.line, hole.character)
        if items and items[0].insert_text:
            filled = items[0].insert_text
            break
    assert filled is not None, "the fallback filled none of the candidate holes"
    status = await s.worker_status()
    assert status["backend"] == "vllm" and status["state"] == "error"  # the remote is still down
    assert status["fallback"] == "local" and status["totals"]["fallbacks"] >= 1
    assert status["totals"]["requests"] == 0  # nothing was answered remotely
    # The answers came from this server's own worker process, which loaded the model (torch); the
    # server itself never imports it.
    server = s.client._server.pid  # type: ignore[attr-defined]
    workers = [p for p in _children(server) if b"diffgem_model.worker" in _cmdline(p)]
    assert len(workers) == 1 and has_torch(workers[0]) and not has_torch(server)
    said = [e for e in s.status if "using the local model meanwhile" in str(e.get("message", ""))]
    assert len(said) == 1, s.status  # the outage is told once, however many requests fell back
    await s.stop()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
