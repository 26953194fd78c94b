"""The one table of LSP methods and commands this server answers, and where each handler runs.

Pure wiring: each entry names a module-level `(session, params) -> result` function from `features/`.
`server.py` registers every entry with pygls; nothing else decides which methods exist.

`runs_on`, after ruff's server (astral-sh/ruff, crates/ruff_server/src/server/api/traits.rs:
`SyncRequestHandler` with `&mut Session` vs `BackgroundDocumentRequestHandler` on a snapshot):
- "main": may change session state (settings, the backend's life); plain functions run inline in
  message order, coroutines start in message order.
- "background": a coroutine, one asyncio task per request, that only reads the session (documents,
  settings) and awaits the backend; `$/cancelRequest` cancels the task, and with it the generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lsprotocol import types

from . import instructions
from .features import code_action, commands, completion, documents, inline_completion, lifecycle
from .results import APPLY_REWRITE_COMMAND


@dataclass(frozen=True)
class Handler:
    method: str  # an LSP method, or a command name for workspace/executeCommand
    func: Callable[..., Any]  # (session, params) -> result; commands get (session, arguments)
    runs_on: Literal["main", "background"]
    options: Any = None  # registration options (they make pygls advertise the capability)
    command: bool = False


HANDLERS: tuple[Handler, ...] = (
    Handler(types.INITIALIZE, lifecycle.initialize, "main"),
    Handler(types.INITIALIZED, lifecycle.initialized, "main"),
    Handler(types.WORKSPACE_DID_CHANGE_CONFIGURATION, lifecycle.did_change_configuration, "main"),
    Handler(types.SHUTDOWN, lifecycle.shutdown, "main"),
    Handler(types.TEXT_DOCUMENT_DID_OPEN, documents.did_open, "main"),
    Handler(types.TEXT_DOCUMENT_DID_CHANGE, documents.did_change, "main"),
    Handler(types.TEXT_DOCUMENT_DID_CLOSE, documents.did_close, "main"),
    Handler(
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        inline_completion.inline_completion,
        "background",
        inline_completion.OPTIONS,
    ),
    Handler(
        types.TEXT_DOCUMENT_COMPLETION, completion.completion, "background", completion.OPTIONS
    ),
    Handler(types.TEXT_DOCUMENT_CODE_ACTION, code_action.code_action, "main", code_action.OPTIONS),
    Handler(types.CODE_ACTION_RESOLVE, code_action.code_action_resolve, "background"),
    Handler(commands.RESTART_COMMAND, commands.restart_worker, "main", command=True),
    Handler(commands.STATUS_COMMAND, commands.status, "background", command=True),
    Handler(APPLY_REWRITE_COMMAND, commands.apply_rewrite, "background", command=True),
    Handler(instructions.COMMAND, commands.rewrite_with_instruction, "background", command=True),
)
