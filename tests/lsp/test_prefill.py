"""Prefill end to end: the real server, worker and embedded checkpoint warm the prompt cache on didOpen and
didChange, and the next inline completion at that cursor finds its prompt already encoded.

Reuse is read from the worker's own figures for the request (`diffgem.status` -> `last`), and the wait
for the warm-up from its prefill count, so nothing here is timed.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from lsprotocol import types

from examples.editor_client import EditorSession

from .conftest import TEST_OPTIONS

URI = "file:///prefill/stack.py"
SOURCE = '''"""A bounded stack."""


class Stack:
    def __init__(self, limit):
        self.items = []
        self.limit = limit

    def push(self, item):
        if len(self.items) >= self.limit:
            raise OverflowError("stack is full")
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()

    def peek(self):
        return self.items[-1]
'''
# didChange: a line typed into push(); the cursor ends after it.
TYPED = "        count = len(self.items)\n        "
AT = SOURCE.index("        self.items.append(item)")
CHANGED = SOURCE[:AT] + TYPED + SOURCE[AT + len("        ") :]
# Then an incremental change (what editors send: the server asks for incremental sync) in pop().
MORE = "value = "
AT_MORE = CHANGED.index("        return self.items.pop()") + len("        ")
CHANGED_MORE = CHANGED[:AT_MORE] + MORE + CHANGED[AT_MORE:]


def cursor(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n"), len(before.rsplit("\n", 1)[-1])


def type_at(session: EditorSession, text: str, offset: int, typed: str) -> None:
    """An incremental didChange inserting `typed` at `offset` of `text`."""
    line, character = cursor(text, offset)
    at = types.Position(line=line, character=character)
    session.versions[URI] += 1
    session.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(
                uri=URI, version=session.versions[URI]
            ),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=at, end=at), text=typed
                )
            ],
        )
    )


async def status(session: EditorSession) -> dict[str, Any]:
    return await session.worker_status()


async def prefilled(session: EditorSession, count: int) -> dict[str, Any]:
    """Wait until the worker has finished `count` prefills and is idle (a guard, not a timing)."""
    for _ in range(1200):
        now = await status(session)
        if now["totals"]["prefills"] >= count and now.get("busy") is None:
            return now
        await asyncio.sleep(0.05)
    raise AssertionError(f"no prefill #{count} finished: {now}")


async def complete(session: EditorSession, text: str, offset: int) -> dict[str, Any]:
    """An invoked inline completion at `offset`; the worker's figures of the generation it ran."""
    before = (await status(session))["totals"]["generations"]
    await session.inline(URI, *cursor(text, offset))
    after = await status(session)
    assert after["totals"]["generations"] == before + 1, "the request did not run the model"
    return after["last"]


async def test_prefill_on_open_and_change_is_reused_by_the_next_completion():
    session = EditorSession(options=dict(TEST_OPTIONS))
    await session.start()
    try:
        await session.wait_ready()
        assert (await status(session))["totals"]["prefills"] == 0
        session.open(URI, SOURCE, "python")
        await prefilled(session, 1)
        # didOpen's cursor: the end of the last line of code (diffgem_lsp/prefill.py).
        last = await complete(session, SOURCE, len(SOURCE.rstrip()))
        assert last["reused_tokens"] > 0
        # The whole prompt was cached but the one token the cache always re-encodes: the prefill
        # built exactly the request's prompt.
        assert last["encoded_tokens"] == 1, last
        session.change(URI, CHANGED)
        await prefilled(session, 2)
        last = await complete(session, CHANGED, AT + len(TYPED))
        assert last["reused_tokens"] > 0
        assert last["encoded_tokens"] == 1, last
        type_at(session, CHANGED, AT_MORE, MORE)
        await prefilled(session, 3)
        last = await complete(session, CHANGED_MORE, AT_MORE + len(MORE))
        assert last["reused_tokens"] > 0
        assert last["encoded_tokens"] == 1, last
    finally:
        await session.stop()


async def test_without_prefill_the_first_completion_reuses_nothing():
    session = EditorSession(options={**TEST_OPTIONS, "prefill": False})
    await session.start()
    try:
        await session.wait_ready()
        session.open(URI, SOURCE, "python")
        session.change(URI, CHANGED)
        last = await complete(session, CHANGED, AT + len(TYPED))
        assert last["reused_tokens"] == 0, last
        assert (await status(session))["totals"]["prefills"] == 0
    finally:
        await session.stop()


@pytest.fixture
def daemon_pids(tmp_path, monkeypatch):
    """A private runtime directory for the shared daemon, which is killed afterwards (it outlives its
    windows by design)."""
    monkeypatch.setenv("DIFFGEM_RUNTIME_DIR", str(tmp_path / "rt"))
    monkeypatch.setenv("DIFFGEM_DAEMON_IDLE_S", "60")
    pids: set[int] = set()
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_prefill_through_the_shared_daemon_is_reused(daemon_pids):
    session = EditorSession(options={**TEST_OPTIONS, "backend": "daemon"})
    await session.start()
    try:
        await session.wait_ready()
        daemon_pids.add((await status(session))["pid"])
        session.open(URI, SOURCE, "python")
        await prefilled(session, 1)
        last = await complete(session, SOURCE, len(SOURCE.rstrip()))
        assert last["reused_tokens"] > 0
        assert last["encoded_tokens"] == 1, last
    finally:
        await session.stop()
