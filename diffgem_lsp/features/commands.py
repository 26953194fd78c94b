"""workspace/executeCommand: restart the worker, report status, apply a rewrite (no-resolve clients).

Commands run on the main loop; the rewrite runs the same pipeline as codeAction/resolve.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types

from ..server import DiffgemServer
from .code_action import APPLY_REWRITE_COMMAND, run_rewrite

log = logging.getLogger("diffgem.commands")


def register(server: DiffgemServer) -> None:
    @server.command("diffgem.restartWorker")
    async def restart_worker(ls: DiffgemServer, *args: Any) -> dict[str, Any]:
        log.info("restarting the worker on request")
        await ls.worker.restart(ls.settings)
        await ls.worker.wait_ready(timeout=120)
        return await ls.worker.status()

    @server.command("diffgem.status")
    async def status(ls: DiffgemServer, *args: Any) -> dict[str, Any]:
        try:
            return await ls.worker.status()
        except Exception as exc:  # the worker may be restarting; status must still answer
            return {
                "state": ls.worker.state,
                "pid": None,
                "model": ls.worker.model,
                "error": str(exc),
            }

    @server.command(APPLY_REWRITE_COMMAND)
    async def apply_rewrite(ls: DiffgemServer, *args: Any) -> bool:
        edit = await run_rewrite(ls, args[0] if args else None)
        if edit is None:
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Info, message="diffgem: nothing to rewrite"
                )
            )
            return False
        result = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label="Rewrite selection")
        )
        return bool(result.applied)
