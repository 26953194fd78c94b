"""The language server object: its state (settings, worker, in-flight requests) and feature registration.

Feature handlers live in `features/`, one module per LSP method family; this module wires them up and
owns what they share. It never imports torch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from . import __version__
from .settings import Settings, resolve_settings
from .worker_client import WorkerClient

log = logging.getLogger("diffgem.server")

STATUS_NOTIFICATION = "diffgem/status"


class DiffgemServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            name="diffgem-lsp",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.settings = Settings()
        self.worker = WorkerClient(self.settings, on_state=self._on_worker_state)
        # Automatic inline requests per document: a newer one supersedes (cancels) the older.
        self.inflight: dict[str, asyncio.Task] = {}
        self._progress_token: str | None = None
        self._loads = 0

    # -- settings ------------------------------------------------------------------------------
    def apply_settings(self, raw: Any) -> bool:
        """Resolve client options; report problems once; return True if the worker must restart."""
        old = self.settings
        self.settings, problems = resolve_settings(raw, base=old)
        for problem in problems:
            log.warning("settings: %s", problem)
            self.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Warning, message=f"diffgem: {problem}"
                )
            )
        logging.getLogger("diffgem").setLevel(self.settings.log_level.upper())
        self.worker.settings = self.settings
        return old.worker_key() != self.settings.worker_key()

    # -- documents -----------------------------------------------------------------------------
    def document(self, uri: str) -> TextDocument:
        """The open document, or an InvalidParams error (never a crash) when it is unknown."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document not open: {uri}")
        return doc

    def too_big_or_binary(self, doc: TextDocument) -> str | None:
        """Why a document gets no suggestions, or None. Checked before any canvas is built."""
        source = doc.source
        if len(source) > self.settings.max_file_kb * 1024:
            return f"file larger than maxFileKb={self.settings.max_file_kb}"
        if "\x00" in source:
            return "binary file"
        return None

    # -- worker state -> client ----------------------------------------------------------------
    def _on_worker_state(self, state: str, message: str) -> None:
        try:
            self.protocol.notify(
                STATUS_NOTIFICATION,
                {"state": state, "message": message, "model": self.worker.model},
            )
        except Exception:  # no client connected yet (e.g. --check)
            return
        self._report_loading(state, message)

    def _report_loading(self, state: str, message: str) -> None:
        """$/progress while the model loads, if the client accepts server-initiated progress."""
        window = self.client_capabilities.window if self.protocol.client_capabilities else None
        if not (window and window.work_done_progress):
            return
        if state == "loading" and self._progress_token is None:
            self._loads += 1  # a fresh token per load: clients reject a reused one
            token = self._progress_token = f"diffgem-model-load-{self._loads}"

            def begin(*_args: Any) -> None:
                self.work_done_progress.begin(
                    token, types.WorkDoneProgressBegin(title="diffgem", message="loading model")
                )

            try:
                self.work_done_progress.create(token, callback=begin)
            except Exception:
                self._progress_token = None
        elif state in ("ready", "error", "stopped") and self._progress_token is not None:
            token, self._progress_token = self._progress_token, None
            self.work_done_progress.tokens.pop(token, None)
            self.work_done_progress.end(
                token,
                types.WorkDoneProgressEnd(message=message if state == "error" else "model ready"),
            )

    def report_server_error(self, error: Exception, source: Any) -> None:
        # Request errors already reach the client as the response; log one line, no pop-up.
        log.error("%s: %s", type(error).__name__, error)


def create_server() -> DiffgemServer:
    from .features import code_action, commands, completion, inline_completion, lifecycle

    server = DiffgemServer()
    for module in (lifecycle, inline_completion, completion, code_action, commands):
        module.register(server)
    return server
