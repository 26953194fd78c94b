"""initialize / initialized / didChangeConfiguration / shutdown: settings and the worker's life.

Runs on the main loop and may change server state; the worker starts after `initialized` so that the
`initialize` response is never held up by model loading.
"""

from __future__ import annotations

import logging

from lsprotocol import types

from ..server import DiffgemServer

log = logging.getLogger("diffgem.lifecycle")


def register(server: DiffgemServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: DiffgemServer, params: types.InitializeParams) -> None:
        ls.apply_settings(params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: DiffgemServer, params: types.InitializedParams) -> None:
        await ls.worker.start()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: DiffgemServer, params: types.DidChangeConfigurationParams
    ) -> None:
        if ls.apply_settings(params.settings):
            log.info("model settings changed: restarting the worker")
            await ls.worker.restart(ls.settings)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: DiffgemServer, params: None) -> None:
        for task in ls.inflight.values():
            task.cancel()
        await ls.worker.stop()
