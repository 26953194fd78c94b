"""One request over a worker-protocol connection: send it, await its final event, cancel it if abandoned.

Shared by the local worker and the shared daemon backends, which differ only in how a message reaches
the model process (a pipe, a unix socket); no model, no LSP types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import diffgem_protocol as P

from .base import BackendError

Send = Callable[[dict[str, Any]], None]


async def exchange(
    pending: dict[int, asyncio.Future[dict[str, Any]]],
    request_id: int,
    message: dict[str, Any],
    send: Send,
    send_quietly: Send,
    on_sent: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The request's final event. The reader resolves `pending[request_id]`; cancelling the awaiting
    task sends the protocol's cancel, so the model process stops at its next denoising step."""
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    pending[request_id] = future
    try:
        send(message)
        if on_sent is not None:
            on_sent()
        return await future
    except asyncio.CancelledError:
        send_quietly(P.request(P.OP_CANCEL, id=request_id))
        raise
    finally:
        pending.pop(request_id, None)


def final_event(event: dict[str, Any], what: str) -> dict[str, Any]:
    """The event of a request that completed; a cancel or an error from the model process raises."""
    if event["event"] == P.EV_CANCELLED:
        raise asyncio.CancelledError()
    if event["event"] == P.EV_ERROR:
        raise BackendError(event.get("message") or f"{what} failed")
    return event
