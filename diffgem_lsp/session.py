"""The server's state: settings, the client's documents, the backend handle and the requests in flight.

Apart from the transport: the session never reads or writes the JSON-RPC stream itself; it reaches the
client through the small `Client` interface that the pygls server (`server.py`) implements. No torch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument, Workspace

from .backends import Backend, create_backend
from .debounce import AdaptiveDebounce
from .failures import with_fix
from .instructions import takes_instructions
from .settings import Settings, resolve_settings
from .suggest_cache import SuggestCache

log = logging.getLogger("diffgem.session")

STATUS_NOTIFICATION = "diffgem/status"


class Client(Protocol):
    """What the session needs from the transport: the open documents and a way to talk to the client."""

    @property
    def workspace(self) -> Workspace: ...

    def capabilities(self) -> types.ClientCapabilities | None: ...

    def notify(self, method: str, params: Any) -> None: ...

    def show_message(self, message: str, kind: types.MessageType) -> None: ...

    async def apply_edit(self, edit: types.WorkspaceEdit, label: str) -> bool: ...

    def begin_progress(self, token: str, title: str, message: str) -> bool: ...

    def report_progress(self, token: str | int, message: str) -> None: ...

    def end_progress(self, token: str, message: str) -> None: ...


class Session:
    def __init__(self, client: Client, *, log_level: str | None = None) -> None:
        self.client = client
        self.settings = Settings()
        # The command line's --log-level, when given, wins over the settings' logLevel.
        self.log_level_override = log_level
        self.backend: Backend = create_backend(self.settings, on_state=self._on_backend_state)
        # Automatic inline requests per document: a newer one supersedes (cancels) the older.
        self.inflight: dict[str, asyncio.Task] = {}
        self._progress_token: str | None = None
        self._loads = 0
        self._errors_shown: set[str] = set()
        # Answers by document state, and the suggestion shown per document (typing-through).
        self.suggestions = SuggestCache()
        # Typing speed per document (didChange times), for the adaptive debounce.
        self.typing: dict[str, AdaptiveDebounce] = {}
        # Pending (debounced) syntax-diagnostics runs per document (features/documents.py).
        self.pending_diagnostics: dict[str, asyncio.Task] = {}
        # Prompt-cache warm-ups per document (prefill.py): the task out, the text it last saw, and
        # where the last change ended (kept after didClose: a reopened file's cursor is likely there).
        self.prefills: dict[str, asyncio.TimerHandle | asyncio.Task] = {}
        self.prefill_texts: dict[str, str] = {}
        self.last_change: dict[str, int] = {}

    # -- settings ------------------------------------------------------------------------------
    def apply_settings(self, raw: Any) -> bool:
        """Resolve client options; report problems once; return True if the backend must restart."""
        old = self.settings
        self.settings, problems = resolve_settings(raw, base=old)
        for problem in problems:
            log.warning("settings: %s", problem)
            self.client.show_message(f"diffgem: {problem}", types.MessageType.Warning)
        if self.log_level_override is None:
            logging.getLogger("diffgem").setLevel(self.settings.log_level.upper())
        self.backend.settings = self.settings
        return old.worker_key() != self.settings.worker_key()

    # -- documents -----------------------------------------------------------------------------
    @property
    def position_encoding(self) -> Any:
        return self.client.workspace.position_encoding

    def document(self, uri: str) -> TextDocument:
        """The open document, or an InvalidParams error (never a crash) when it is unknown."""
        doc = self.client.workspace.text_documents.get(uri)
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

    def debounce_s(self, uri: str) -> float:
        """How long an automatic request for this document waits: adaptive (up to debounceMs) or
        the fixed debounceMs (debounce.py)."""
        cap = float(self.settings.debounce_ms)
        if not self.settings.adaptive_debounce:
            return cap / 1000
        policy = self.typing.get(uri)
        if policy is None:
            return 0.0
        return min(policy.delay_ms(), cap) / 1000

    # -- requests in flight --------------------------------------------------------------------
    def supersede(self, uri: str, task: asyncio.Task) -> None:
        """Cancel the previous request for this document (and its generation) and any prompt-cache
        warm-up not yet done (the request encodes the prompt itself: prefill.py); track the new one."""
        warmup = self.prefills.pop(uri, None)
        if warmup is not None:
            warmup.cancel()
        previous = self.inflight.pop(uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        self.inflight[uri] = task

    def finished(self, uri: str, task: asyncio.Task) -> None:
        if self.inflight.get(uri) is task:
            del self.inflight[uri]

    def cancel_all(self) -> None:
        for task in [*self.inflight.values(), *self.prefills.values()]:
            task.cancel()
        self.inflight.clear()
        self.prefills.clear()

    # -- backend state -> client ---------------------------------------------------------------
    def _on_backend_state(self, state: str, message: str) -> None:
        # `instructions`: whether "Rewrite selection…" can run now (commands.status says the same).
        self.client.notify(
            STATUS_NOTIFICATION,
            {
                "state": state,
                "message": message,
                "model": self.backend.model,
                "instructions": takes_instructions(self.backend),
            },
        )
        if state == "error" and message not in self._errors_shown:
            # Once per distinct failure (a model that will not load, a protocol mismatch, a crash
            # loop): the status notification repeats it for status lines, the pop-up does not.
            self._errors_shown.add(message)
            self.client.show_message(with_fix(message), types.MessageType.Error)  # + what fixes it
        self._report_loading(state, message)

    def _report_loading(self, state: str, message: str) -> None:
        """$/progress while the model loads, if the client accepts server-initiated progress."""
        caps = self.client.capabilities()
        window = caps.window if caps else None
        if not (window and window.work_done_progress):
            return
        if state == "loading" and self._progress_token is None:
            self._loads += 1  # a fresh token per load: clients reject a reused one
            token = f"diffgem-model-load-{self._loads}"
            if self.client.begin_progress(token, "diffgem", "loading model"):
                self._progress_token = token
        elif state in ("ready", "error", "stopped") and self._progress_token is not None:
            token, self._progress_token = self._progress_token, None
            self.client.end_progress(token, message if state == "error" else "model ready")
