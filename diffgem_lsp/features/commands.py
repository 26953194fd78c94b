"""workspace/executeCommand: restart the backend, report status, apply a rewrite (no-resolve clients),
and rewrite with the user's instruction ("Rewrite selection…").

Each command is a `(session, arguments) -> result` function; the rewrites run the same pipeline as
codeAction/resolve.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from .. import instructions, pipelines, results
from ..session import Session
from .code_action import parse_target, run_rewrite

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
    # `instructions`: whether "Rewrite selection…" can run now (a chat-layout model that is ready); the
    # editors show their command for it only then.
    return {
        **answer,
        "state": backend.state,
        "instructions": instructions.takes_instructions(backend),
    }


async def apply_rewrite(session: Session, arguments: list[Any]) -> bool:
    edit = await run_rewrite(session, arguments[0] if arguments else None)
    if not isinstance(edit, types.WorkspaceEdit):  # the same words as a resolved action's reason
        reason = edit.reason if edit is not None else results.kept_as_is().reason
        session.client.show_message(f"diffgem: {reason}", types.MessageType.Info)
        return False
    return await session.client.apply_edit(edit, "Rewrite selection")


async def rewrite_with_instruction(session: Session, arguments: list[Any]) -> dict[str, Any]:
    """`diffgem.rewriteWithInstruction` [{uri, range, version?, instruction}]: rewrite the range as the
    instruction asks and apply the edit through workspace/applyEdit.

    Answers {"applied": bool, "message": str | None}; when nothing is applied the message is also shown
    (window/showMessage), in the words of a resolved action's reason. A malformed target is an
    InvalidParams error; a missing instruction or a model that cannot follow one is a message, not an error.
    """
    target = arguments[0] if arguments else None
    uri, start, end, version = parse_target(target)
    assert isinstance(target, dict)  # parse_target read keys of it
    try:
        instruction = instructions.checked(target.get("instruction"))
        refused = instructions.refusal(session.backend)
        if refused == instructions.NOT_READY:  # loading: wait as any invoked rewrite waits for it
            await _ready(session)
            refused = instructions.refusal(session.backend)
        if refused is not None:
            raise instructions.InstructionRefused(refused)
    except instructions.InstructionRefused as exc:
        return _not_applied(session, str(exc))
    rewrite = await pipelines.rewrite(session, uri, start, end, version, instruction)
    if isinstance(rewrite, pipelines.NoRewrite):
        return _not_applied(session, rewrite.reason)
    applied = await session.client.apply_edit(
        results.workspace_edit(uri, rewrite), instructions.TITLE
    )
    return {"applied": applied, "message": None if applied else "the editor did not apply the edit"}


async def _ready(session: Session) -> None:
    try:
        await session.backend.wait_ready(timeout=pipelines.INVOKED_DEADLINE_S)
    except Exception:  # the refusal that follows says "not ready"; the log keeps why
        log.debug("rewriteWithInstruction: the backend did not become ready", exc_info=True)


def _not_applied(session: Session, reason: str) -> dict[str, Any]:
    log.info("rewriteWithInstruction: %s", reason)
    session.client.show_message(f"diffgem: {reason}", types.MessageType.Info)
    return {"applied": False, "message": reason}
