"""The pygls transport: reads and writes JSON-RPC, dispatches to the handler table, talks to the client.

It owns no feature logic and no state beyond the connection: state lives in `session.Session`, handlers
in `features/` (registered from `handlers.HANDLERS`). It never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__, results
from .handlers import HANDLERS, Handler
from .rpc import DiffgemProtocol
from .session import Session

log = logging.getLogger("diffgem.server")


class DiffgemServer(LanguageServer):
    """The transport, and the session's `Client`: the only object that writes to the client."""

    def __init__(self, *, log_level: str | None = None) -> None:
        super().__init__(
            name="diffgem-lsp",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=DiffgemProtocol,  # every request answered exactly once (rpc.py)
        )
        self.session = Session(self, log_level=log_level)

    # -- session.Client ------------------------------------------------------------------------
    def capabilities(self) -> types.ClientCapabilities | None:
        return self.protocol.client_capabilities

    def notify(self, method: str, params: Any) -> None:
        try:
            self.protocol.notify(method, params)
        except Exception:  # the stream is closed (client gone): nothing to tell
            log.debug("could not send %s", method, exc_info=True)

    def show_message(self, message: str, kind: types.MessageType) -> None:
        self.window_show_message(results.show_message(message, kind))

    async def apply_edit(self, edit: types.WorkspaceEdit, label: str) -> bool:
        response = await self.workspace_apply_edit_async(results.apply_edit(edit, label))
        return bool(response.applied)

    def begin_progress(self, token: str, title: str, message: str) -> bool:
        def begin(*_args: Any) -> None:
            self.work_done_progress.begin(token, results.progress_begin(title, message))

        try:
            self.work_done_progress.create(token, callback=begin)
        except Exception:  # e.g. a token still in use: no progress bar, nothing else changes
            log.debug("window/workDoneProgress/create failed", exc_info=True)
            return False
        return True

    def report_progress(self, token: str | int, message: str) -> None:
        self.work_done_progress.report(token, results.progress_report(message))

    def end_progress(self, token: str, message: str) -> None:
        self.work_done_progress.tokens.pop(token, None)
        self.work_done_progress.end(token, results.progress_end(message))

    # -- pygls hooks ---------------------------------------------------------------------------
    def report_server_error(self, error: Exception, source: Any) -> None:
        # Request errors already reach the client as the response; log one line, no pop-up.
        log.error("%s: %s", type(error).__name__, error, exc_info=_traceback(error))


def _traceback(error: BaseException) -> BaseException | None:
    """The traceback for a log line, at debug level only (one line per error otherwise)."""
    return error if log.isEnabledFor(logging.DEBUG) else None


def _bind(handler: Handler, session: Session) -> Callable[..., Any]:
    """The handler with the session as its first argument, in the shape pygls calls it."""
    func = handler.func
    if handler.command:

        async def command(*arguments: Any) -> Any:
            return await func(session, list(arguments))

        return command
    if asyncio.iscoroutinefunction(func):

        async def coroutine(params: Any) -> Any:
            return await func(session, params)

        return coroutine

    def plain(params: Any) -> Any:
        return func(session, params)

    return plain


def create_server(log_level: str | None = None) -> DiffgemServer:
    server = DiffgemServer(log_level=log_level)
    for handler in HANDLERS:
        bound = _bind(handler, server.session)
        if handler.command:
            server.command(handler.method)(bound)
        else:
            server.feature(handler.method, handler.options)(bound)
    return server
