"""workspace/executeCommand: restart the backend, report status, apply a rewrite (no-resolve clients).

Each command is a `(session, arguments) -> result` function; the rewrite runs the same pipeline as
codeAction/resolve.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from .. import results
from ..session import Session
from .code_action import run_rewrite

log = logging.getLogger("diffgem.commands")

RESTART_COMMAND = "diffgem.restartWorker"
STATUS_COMMAND = "diffgem.status"


async def restart_worker(session: Session, arguments: list[Any]) -> dict[str, Any]:
    log.info("restarting the backend on request")
    await session.backend.restart(session.settings)
    await session.backend.wait_ready(timeout=120)
    return await status(session, arguments)


async def status(session: Session, arguments: list[Any]) -> dict[str, Any]:
    backend = session.backend
    try:
        answer = await backend.status()
    except Exception as exc:  # the worker may be restarting; status must still answer
        log.debug("status: the backend did not answer", exc_info=True)
        answer = {"pid": None, "model": backend.model, "error": str(exc)}
    # The state is the backend's as this answer leaves, not the one in the worker's reply: a worker
    # still loading answers "loading" from its reader thread, and when its "ready" event is read in
    # the same batch, the diffgem/status notification "ready" goes out first; a client that applies
    # this answer after it (VS Code's status item) would then say "loading" for good.
    return {**answer, "state": backend.state}


async def apply_rewrite(session: Session, arguments: list[Any]) -> bool:
    edit = await run_rewrite(session, arguments[0] if arguments else None)
    if not isinstance(edit, types.WorkspaceEdit):  # the same words as a resolved action's reason
        reason = edit.reason if edit is not None else results.kept_as_is().reason
        session.client.show_message(f"diffgem: {reason}", types.MessageType.Info)
        return False
    return await session.client.apply_edit(edit, "Rewrite selection")
