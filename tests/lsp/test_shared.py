"""Three real diffgem-lsp processes on the shared daemon (`backend: "daemon"`), real embedded model.

One daemon holds the model (the servers never load torch), every window is answered, a window's
superseded request never runs while the others' do, and a daemon killed mid-request is restarted by the
windows, each of which says so once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from examples.editor_client import EditorSession, Hole

from .conftest import TEST_OPTIONS

# The first of these that the embedded model fills is the one every test uses (model-independent, as
# tests/editors does): a test must see a real fill before it can say that a window was answered.
CANDIDATES = [
    Hole.from_marked(text)
    for text in (
        'def greet(name):\n    message = "Hello, ⟨⟩"\n    return message\n',
        "import os\n\n\ndef read_config(path):\n    with open(path) as f:\n        ⟨⟩\n",
        'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n'
        "        return n\n    return ⟨⟩\n\n\nprint(fibonacci(10))\n",
        "for i in range(10):\n    print(⟨⟩)\n",
    )
]
URI = "file:///tmp/shared/hole.py"
SHARED = {**TEST_OPTIONS, "backend": "daemon"}
# A request that holds the engine for its whole step budget: the entropy rule with the early stop off
# (the confidence rule ends once every position is committed, a handful of steps here, which on a
# loaded machine could finish before the next window's request arrived). 200 forwards: seconds, well
# within the server's 120 s deadline for an invoked request (diffgem_lsp/pipelines.py) under load.
LONG = {"invokedSteps": 200, "earlyStop": False, "sampler": "entropy"}


@pytest.fixture
def rundir(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFGEM_RUNTIME_DIR", str(tmp_path / "rt"))
    monkeypatch.setenv("DIFFGEM_DAEMON_IDLE_S", "60")
    pids: set[int] = set()
    yield pids
    for pid in pids:  # the daemon outlives its windows by design: end it here
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def windows(n: int, pids: set[int], **options) -> tuple[list[EditorSession], Hole]:
    """n windows on one daemon, and the hole the model fills (found by a fourth window that then
    closes: a server need not repeat a suggestion it already gave for the same text)."""
    prober, *sessions = [EditorSession({**SHARED, **options}) for _ in range(n + 1)]
    await asyncio.gather(*(s.start() for s in [prober, *sessions]))
    await asyncio.gather(*(s.wait_ready() for s in [prober, *sessions]))
    for s in [prober, *sessions]:
        pids.add((await s.worker_status())["pid"])
    hole = await _filled_hole(prober)
    await prober.stop()
    for s in sessions:
        s.open(URI, hole.text, "python")
    return sessions, hole


async def _filled_hole(session: EditorSession) -> Hole:
    for i, hole in enumerate(CANDIDATES):
        uri = f"file:///tmp/shared/probe{i}.py"
        session.open(uri, hole.text, "python")
        if await session.inline(uri, hole.line, hole.character):
            return hole
    raise AssertionError("the embedded model filled none of the candidate holes")


def server_pids(sessions: list[EditorSession]) -> list[int]:
    return [s.client._server.pid for s in sessions]  # type: ignore[attr-defined,union-attr]


def has_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def settings(options: dict) -> types.DidChangeConfigurationParams:
    return types.DidChangeConfigurationParams(settings={"diffgem": options})


async def test_three_windows_one_model(rundir):
    sessions, hole = await windows(3, rundir)
    assert len(rundir) == 1, rundir  # one daemon
    (daemon,) = rundir
    # The model is loaded once, in the daemon: no server process maps torch or runs its own worker.
    assert has_torch(daemon) and not any(has_torch(p) for p in server_pids(sessions))
    before = (await sessions[0].worker_status())["totals"]["generations"]
    items = await asyncio.gather(*(s.inline(URI, hole.line, hole.character) for s in sessions))
    assert all(i and i[0].insert_text for i in items), items
    status = await sessions[0].worker_status()
    assert len(status["clients"]) == 3 and status["totals"]["generations"] - before == 3
    assert status["rss_mb"] > 0
    for s in sessions:
        await s.stop()


async def test_supersede_is_per_window(rundir):
    # No background prefill: the daemon's queue then holds only this test's requests, so "busy" below
    # is b's long request (a prefill from didOpen running first let a's first request start before
    # the newer one arrived: CI saw three generations instead of two).
    (a, b), hole = await windows(2, rundir, prefill=False)
    # b's long request holds the engine; a's first request queues behind it, then a newer one from a
    # (the user kept typing) supersedes it.
    b.client.workspace_did_change_configuration(settings({**SHARED, **LONG}))
    before = (await a.worker_status())["totals"]["generations"]
    long_b = asyncio.ensure_future(b.inline(URI, hole.line, hole.character))
    while (await a.worker_status()).get("busy") is None:
        await asyncio.sleep(0.02)
    first_a = asyncio.ensure_future(a.inline(URI, hole.line, hole.character))
    while (await a.worker_status())["queued"] == 0:
        await asyncio.sleep(0.02)
    second_a = asyncio.ensure_future(a.inline(URI, hole.line, hole.character))
    assert (await second_a)[0].insert_text
    # b is answered, not failed: its generation ran to its end and is one of the two counted below
    # (the entropy rule's last canvas may be an empty fill: a's newer answer is the fill seen).
    assert isinstance(await long_b, list)
    try:
        superseded = await first_a
    except JsonRpcException:
        superseded = []
    assert superseded == []
    after = (await a.worker_status())["totals"]["generations"]
    assert after - before == 2  # b's and a's newer one: the superseded one never ran
    await a.stop()
    await b.stop()


async def test_daemon_killed_mid_request_every_window_recovers(rundir):
    # No background prefill: "queued" below then counts only these long requests (a didOpen prefill
    # queued or running could satisfy it while a window's request had not reached the daemon; that
    # request would then run on the new daemon and answer instead of failing).
    sessions, hole = await windows(3, rundir, prefill=False)
    (first,) = rundir
    for s in sessions:  # long requests, so that the kill lands while all three are in the daemon
        s.client.workspace_did_change_configuration(settings({**SHARED, **LONG}))
    pending = [asyncio.ensure_future(s.inline(URI, hole.line, hole.character)) for s in sessions]
    while (await sessions[0].worker_status())["queued"] < 2:
        await asyncio.sleep(0.02)
    os.kill(first, signal.SIGKILL)
    for task in pending:
        with pytest.raises(JsonRpcException, match="exited"):
            await task
    for s in sessions:
        s.client.workspace_did_change_configuration(settings({**SHARED, "sampler": "confidence"}))
    await asyncio.gather(*(s.wait_ready() for s in sessions))
    after = {(await s.worker_status())["pid"] for s in sessions}
    rundir.update(after)
    assert len(after) == 1 and first not in after  # one new daemon, shared again
    # The same hole one line down (a new text, so no server is asked for what it already answered).
    for s in sessions:
        s.change(URI, "# again\n" + hole.text)
    items = await asyncio.gather(*(s.inline(URI, hole.line + 1, hole.character) for s in sessions))
    assert all(i and i[0].insert_text for i in items), items
    for s in sessions:
        told = [e for e in s.status if "exited" in str(e.get("message", ""))]
        assert len(told) == 1, s.status  # each window said so once
        await s.stop()


async def test_daemon_exits_when_idle_after_its_windows_close(rundir, monkeypatch):
    monkeypatch.setenv("DIFFGEM_DAEMON_IDLE_S", "1")  # the windows start the daemon with it
    (a, b), hole = await windows(2, rundir, prefill=False)
    (daemon,) = rundir
    socket_files = list(Path(os.environ["DIFFGEM_RUNTIME_DIR"]).glob("d-*.sock"))
    assert len(socket_files) == 1 and _alive(daemon)
    assert (await a.inline(URI, hole.line, hole.character))[0].insert_text  # it served a
    await a.stop()
    # Longer than the idle time with b still connected: the daemon stays, and answers b itself.
    await asyncio.sleep(3)
    assert (await b.inline(URI, hole.line, hole.character))[0].insert_text
    assert (await b.worker_status())["pid"] == daemon
    await b.stop()
    # No window left: after the idle time it exits by itself and removes its socket.
    for _ in range(12000):  # a hang guard only (120 s or more), nothing is timed
        if not _alive(daemon):
            break
        await asyncio.sleep(0.01)
    assert not _alive(daemon), "the daemon did not exit when idle"
    assert not socket_files[0].exists()


def _alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
