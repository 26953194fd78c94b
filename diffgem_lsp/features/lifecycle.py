"""initialize / initialized / didChangeConfiguration / shutdown: settings and the backend's life.

Main-loop handlers: they change session state. The backend starts after `initialized`, so that the
`initialize` response is never held up by model loading.
"""

from __future__ import annotations

import logging

from lsprotocol import types

from ..session import Session

log = logging.getLogger("diffgem.lifecycle")


def initialize(session: Session, params: types.InitializeParams) -> None:
    session.apply_settings(params.initialization_options)


async def initialized(session: Session, params: types.InitializedParams) -> None:
    await session.backend.start()


async def did_change_configuration(
    session: Session, params: types.DidChangeConfigurationParams
) -> None:
    if session.apply_settings(params.settings):
        log.info("model settings changed: restarting the backend")
        await session.backend.restart(session.settings)


async def shutdown(session: Session, params: None) -> None:
    session.cancel_all()
    await session.backend.stop()
