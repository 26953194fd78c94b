"""The handler table, the session's error and log-level rules, and the pure LSP conversions.

No server process and no model here. A rewrite's edits -> WorkspaceEdit (UTF-16 and UTF-8 clients, multi-line, several edits), applied back
with the example client's `apply_edits`, must give the rewritten text.
"""

from __future__ import annotations

import asyncio
import inspect
import logging

import pytest
from lsprotocol import types

from diffgem_lsp import canvas as C
from diffgem_lsp import pipelines, results
from diffgem_lsp.features import commands
from diffgem_lsp.handlers import HANDLERS
from diffgem_lsp.session import Session
from diffgem_protocol import EV_READY, GenerationResult
from examples.editor_client import apply_edits

RESULT = GenerationResult(
    text="",
    token_ids=[],
    forwards=1,
    canvases=1,
    tokens_per_forward=1.0,
    mean_confidence=1.0,
    encoded_tokens=0,
    reused_tokens=0,
    encode_ms=0.0,
    denoise_ms=0.0,
    finished=True,
)


def test_every_handler_is_a_module_level_function_marked_main_or_background():
    methods = [h.method for h in HANDLERS]
    assert len(methods) == len(set(methods)), "a method registered twice"
    for handler in HANDLERS:
        func = handler.func
        assert func.__qualname__ == func.__name__, f"{func.__qualname__} is not module-level"
        assert list(inspect.signature(func).parameters)[0] == "session", func.__name__
        assert handler.runs_on in ("main", "background")
        if handler.runs_on == "background":  # a task per request, so $/cancelRequest cancels it
            assert asyncio.iscoroutinefunction(func), func.__name__


def rewrite_of(old: str, new: str, encoding: str, version: int | None = 3) -> pipelines.Rewrite:
    """The pipeline's last step on a whole-document "selection": minimal edits, client encoding."""
    edits = C.minimal_edits(old, new, C.Position(0, 0))
    return pipelines.Rewrite(
        edits=pipelines.to_client_encoding(old, edits, encoding), version=version, result=RESULT
    )


OLD = (
    "def average(values):\n"
    '    label = "naïve 😀"  # café\n'
    "    total = 0\n"
    "    for i in range(0, len(values)):\n"
    "        total = total + values[i]\n"
    "    return total / len(values)\n"
)
NEW = (
    "def average(values):\n"
    '    label = "naïve 😀 ok"  # café\n'
    "    total = 0\n"
    "    total += sum(values)\n"
    "    return total / len(values)\n"
)


def test_rewrite_to_workspace_edit_utf16_multiline_several_edits():
    rewrite = rewrite_of(OLD, NEW, "utf-16")
    edit = results.workspace_edit("file:///a.py", rewrite)
    [change] = edit.document_changes
    assert change.text_document.version == 3 and change.text_document.uri == "file:///a.py"
    assert len(change.edits) >= 2, change.edits  # two separate regions changed
    assert any(e.range.start.line != e.range.end.line for e in change.edits)  # one spans lines
    # After "😀" (two UTF-16 code units) the column is 21, not 20 (code points) or 23 (UTF-8 bytes).
    first = change.edits[0]
    assert first.range.start == types.Position(line=1, character=21), first
    assert apply_edits(OLD, change.edits) == NEW


def test_rewrite_to_workspace_edit_for_a_utf8_client_uses_byte_columns():
    change = results.workspace_edit("file:///a.py", rewrite_of(OLD, NEW, "utf-8"))
    first = change.document_changes[0].edits[0]
    assert first.range.start == types.Position(
        line=1, character=len('    label = "naïve 😀'.encode())
    )


def test_unversioned_rewrite_is_a_plain_changes_map():
    edit = results.workspace_edit("file:///a.py", rewrite_of(OLD, NEW, "utf-16", version=None))
    assert edit.document_changes is None
    assert apply_edits(OLD, edit.changes["file:///a.py"]) == NEW


@pytest.mark.parametrize("with_command", [True, False])
def test_rewrite_action_carries_its_target_and_a_command_only_when_needed(with_command):
    data = {"uri": "file:///a.py", "range": {}, "version": 1}
    action = results.rewrite_action(data, with_command=with_command)
    assert action.kind == types.CodeActionKind.RefactorRewrite and action.edit is None
    assert (action.command is not None) == with_command


class FakeClient:
    """The transport side of a Session, recording what would go to the editor."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []
        self.shown: list[tuple[str, types.MessageType]] = []

    workspace = None

    def capabilities(self) -> None:
        return None

    def notify(self, method: str, params: object) -> None:
        self.sent.append((method, params))

    def show_message(self, message: str, kind: types.MessageType) -> None:
        self.shown.append((message, kind))

    async def apply_edit(self, edit: types.WorkspaceEdit, label: str) -> bool:
        return True

    def begin_progress(self, token: str, title: str, message: str) -> bool:
        return True

    def report_progress(self, token: str | int, message: str) -> None:
        pass

    def end_progress(self, token: str, message: str) -> None:
        pass


def test_a_backend_error_is_shown_once_and_every_state_goes_to_the_status_line():
    client = FakeClient()
    session = Session(client)  # type: ignore[arg-type]
    for _ in range(3):
        session._on_backend_state("error", "protocol version 99")
    session._on_backend_state("error", "model not found")
    shown = [m for m, _ in client.shown]
    assert len(shown) == 2, shown
    assert shown[0].startswith("diffgem: protocol version 99"), shown
    assert shown[1].startswith("diffgem: model not found"), shown
    assert all(kind == types.MessageType.Error for _, kind in client.shown)
    assert [p["state"] for m, p in client.sent if m == "diffgem/status"] == ["error"] * 4


@pytest.mark.parametrize("flag", [None, "debug"])
def test_the_log_level_flag_wins_over_the_setting(flag):
    logger = logging.getLogger("diffgem")
    saved = logger.level
    try:
        logger.setLevel(logging.DEBUG)
        session = Session(FakeClient(), log_level=flag)  # type: ignore[arg-type]
        session.apply_settings({"logLevel": "error"})
        assert logger.level == (logging.DEBUG if flag else logging.ERROR)
    finally:
        logger.setLevel(saved)


def test_the_status_answer_agrees_with_the_last_status_notification():
    """A worker still loading answers `status` with "loading" from its reader thread; when its ready
    event is read in the same batch, the "ready" notification leaves before the command's answer.
    The answer must then say "ready" too: VS Code applies it last, and said "loading" for good (CI)."""
    client = FakeClient()
    session = Session(client)  # type: ignore[arg-type]
    backend = session.backend
    worker = backend.current  # the local worker's backend, not started: no process here

    async def stale_status(timeout: float = 5.0) -> dict:
        worker._on_event({"event": EV_READY, "model": "tiny"})  # read after the status reply
        return {"state": "loading", "pid": 1, "model": None}

    worker.status = stale_status  # type: ignore[method-assign]
    answer = asyncio.run(commands.status(session, []))
    notified = [p["state"] for m, p in client.sent if m == "diffgem/status"]
    assert notified == ["ready"], notified
    assert answer["state"] == "ready", answer
    assert answer["pid"] == 1  # the rest of the worker's reply is kept
