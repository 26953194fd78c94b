"""The shared backend: this server's connection to the one model daemon all editor windows on the machine use.

Speaks the worker's line protocol (`diffgem_protocol`) over the daemon's socket; starting, locating and
locking the daemon is `daemon_runtime`. A dead daemon fails the requests in flight, is restarted (one
process wins the start lock; the others connect to it), and the user is told once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from typing import Any

import diffgem_protocol as P

from ..settings import Settings
from .base import BackendError, DraftCallback, StateCallback
from .daemon_runtime import DaemonPlace, StartLock, open_connection, spawn_daemon
from .exchange import exchange, final_event

log = logging.getLogger("diffgem.backend.daemon")

START_WAIT_S = 30.0  # a fresh daemon binds its socket before it loads the model: this is generous
# The daemon exits this long after its last client left (tests shorten it through the environment).
IDLE_EXIT_S = float(os.environ.get("DIFFGEM_DAEMON_IDLE_S", "600"))
MAX_RESTARTS = 3  # within RESTART_WINDOW_S; past that the daemon is reported broken, not restarted
RESTART_WINDOW_S = 60.0


class DaemonClient:
    """The `Backend` that shares one resident model with every other diffgem-lsp of this user."""

    kind = "daemon"
    supports_prefill = True  # base.Prefiller: the daemon's engine warms its prompt cache on request
    # The wire's batched candidates and multi-hole requests (diffgem_protocol), answered by model/worker.py.
    supports_batched = True

    def __init__(self, settings: Settings, on_state: StateCallback = lambda s, m: None):
        self.settings = settings
        self.on_state = on_state
        self.state = "stopped"
        self.model = ""
        self.layout: str | None = None  # the checkpoint's prompt layout, from the ready event
        self.pid: int | None = None  # the daemon's
        self.error: str | None = None
        self.place: DaemonPlace | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._drafts: dict[int, DraftCallback] = {}
        self._status_waiters: list[asyncio.Future[dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._restarts: list[float] = []
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._connecting: asyncio.Task | None = None
        self._announced: int | None = None  # the daemon whose death the user was told about

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self.error = None
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
        await self._connecting

    async def _connect(self) -> None:
        self._ready.clear()
        self._set_state("loading", "connecting to the shared model daemon")
        try:
            self.place = DaemonPlace.for_settings(self.settings)
            reader, writer = await self._open_or_start(self.place)
        except (OSError, BackendError) as exc:
            self.error = f"shared model daemon unavailable: {exc}"
            self._set_state("error", self.error)
            self._ready.set()
            return
        self._writer = writer
        writer.write(P.encode(P.request("hello", name=f"diffgem-lsp pid {os.getpid()}")))
        self._spawn(self._read_events(reader, writer))

    async def _open_or_start(
        self, place: DaemonPlace
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await open_connection(place)
        except OSError:
            pass
        async with StartLock(place.lock):
            try:  # another editor may have started it while this one waited for the lock
                return await open_connection(place)
            except OSError:
                pass
            log.info("starting the shared model daemon (%s)", place.socket)
            await spawn_daemon(place, self.settings, IDLE_EXIT_S)
            deadline = time.monotonic() + START_WAIT_S
            while True:
                try:
                    return await open_connection(place)
                except OSError:
                    if time.monotonic() > deadline:
                        raise BackendError(
                            f"the daemon did not listen within {START_WAIT_S:.0f} s (see {place.log})"
                        ) from None
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Leave the daemon (it keeps serving the other windows, and exits when idle)."""
        self._stopping = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._fail_pending("disconnected from the shared model daemon")
        self._set_state("stopped", "disconnected from the shared model daemon")

    async def restart(self, settings: Settings | None = None) -> None:
        if settings is not None:
            self.settings = settings
        self._restarts.clear()
        await self.stop()
        await self.start()

    async def wait_ready(self, timeout: float) -> None:
        if self._writer is None and self.state != "error":
            await self.start()
        elif self._connecting is not None and not self._connecting.done():
            await self._connecting
        if self.state == "error" and not self._ready.is_set():
            raise BackendError(self.error or "shared model daemon is not running")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError as exc:
            raise BackendError(f"model still loading after {timeout:.0f} s") from exc
        if self.state == "error":
            raise BackendError(self.error or "model unavailable")

    # -- requests ------------------------------------------------------------------------------
    async def generate(
        self, params: P.GenerateParams, on_draft: DraftCallback | None = None
    ) -> P.GenerationResult:
        """One generation in the daemon. Cancelling the awaiting task cancels it there."""
        await self.wait_ready(timeout=120)
        request_id = next(self._ids)
        request = P.GenerateRequest(id=request_id, params=params, stream=on_draft is not None)
        if on_draft is not None:
            self._drafts[request_id] = on_draft
        try:
            event = await exchange(
                self._pending, request_id, request.to_message(), self._send, self._send_quietly
            )
        finally:
            self._drafts.pop(request_id, None)
        return P.GenerationResult.from_message(final_event(event, "generation")["result"])

    async def prefill(self, params: P.GenerateParams) -> dict[str, Any]:
        """Warm the worker's prompt cache for `params` (the protocol's prefill); its EV_PREFILLED
        figures. Cancelling the awaiting task cancels it there; no "generating" state: nothing shows."""
        await self.wait_ready(timeout=120)
        request_id = next(self._ids)
        message = P.PrefillRequest(id=request_id, params=params).to_message()
        event = await exchange(self._pending, request_id, message, self._send, self._send_quietly)
        return final_event(event, "prefill")

    async def status(self, timeout: float = 5.0) -> dict[str, Any]:
        base = {"backend": self.kind, "socket": str(self.place.socket) if self.place else None}
        if self._writer is None:
            return {
                **base,
                "state": self.state,
                "pid": None,
                "model": self.model,
                "error": self.error,
            }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._status_waiters.append(future)
        self._send(P.request(P.OP_STATUS))
        return {**base, **await asyncio.wait_for(future, timeout)}

    # -- internals -----------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, message: dict[str, Any]) -> None:
        if self._writer is None or self._writer.is_closing():
            raise BackendError("not connected to the shared model daemon")
        self._writer.write(P.encode(message))

    def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except (BackendError, ConnectionError, RuntimeError):
            pass

    def _set_state(self, state: str, message: str) -> None:
        self.state = state
        self.on_state(state, message)

    def _fail_pending(self, reason: str) -> None:
        for future in list(self._pending.values()):
            if not future.done():
                future.set_result(P.event(P.EV_ERROR, message=reason))
        for waiter in self._status_waiters:
            if not waiter.done():
                waiter.set_exception(BackendError(reason))
        self._status_waiters.clear()

    async def _read_events(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while line := await reader.readline():
                try:
                    message = P.decode(line)
                except P.ProtocolError as exc:
                    log.warning("daemon sent a bad line: %s", exc)
                    continue
                self._on_event(message)
        except (ConnectionError, ValueError) as exc:
            log.warning("daemon connection: %s", exc)
        if writer is self._writer and not self._stopping:
            self._on_daemon_lost()

    def _on_event(self, message: dict[str, Any]) -> None:
        name = message.get("event")
        if name == P.EV_HELLO:
            self.pid = message.get("pid")
            if message.get("protocol") != P.PROTOCOL_VERSION:
                log.error("daemon speaks protocol %s", message.get("protocol"))
        elif name == P.EV_READY:
            self.model = message.get("model", "")
            self.layout = message.get("layout")
            self._ready.set()
            self._set_state("ready", f"{self.model} (shared, daemon pid {self.pid})")
        elif name == P.EV_LOAD_FAILED:
            self.error = message.get("message", "model could not be loaded")
            self._set_state("error", self.error)
            self._ready.set()
        elif name in (P.EV_RESULT, P.EV_PREFILLED, P.EV_ERROR, P.EV_CANCELLED):
            future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
            elif name == P.EV_ERROR and message.get("id") is None:
                log.warning("daemon: %s", message.get("message"))
        elif name == P.EV_DRAFT:
            callback = self._drafts.get(message.get("id"))  # type: ignore[arg-type]
            if callback is not None:
                callback(message.get("text", ""))
        elif name == P.EV_STATUS and self._status_waiters:
            waiter = self._status_waiters.pop(0)
            if not waiter.done():
                waiter.set_result(message)

    def _on_daemon_lost(self) -> None:
        """The daemon went away: fail what was in flight, say so once, and restart or reconnect."""
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
        reason = f"shared model daemon (pid {self.pid}) exited"
        log.error("%s; %d request(s) failed", reason, len(self._pending))
        self._fail_pending(reason + " during the request; restarting it")
        self._writer = None
        self._ready.clear()
        if len(self._restarts) > MAX_RESTARTS:
            self.error = f"{reason} {len(self._restarts)} times in a minute; not restarting it"
            self._set_state("error", self.error)
            return
        # Once per dead daemon: a connection that drops again before the new daemon said hello
        # (it was still starting) is the same event for the user.
        told = self._announced == self.pid
        self._announced = self.pid
        self._set_state(
            "loading",
            "reconnecting to the shared model daemon" if told else f"{reason}; restarting it",
        )
        self._connecting = asyncio.ensure_future(self._connect())


async def query_daemons(timeout: float = 5.0) -> list[dict[str, Any]]:
    """Status of every daemon of this user (for `diffgem-lsp --status`); starts none.

    A socket nobody answers on is a daemon that died without cleaning up: listed as not running.
    """
    from .daemon_runtime import known_daemons

    found = []
    for place in known_daemons():
        entry: dict[str, Any] = {"socket": str(place.tcp_info if place.tcp() else place.socket)}
        try:
            reader, writer = await asyncio.wait_for(open_connection(place), timeout)
        except (OSError, TimeoutError) as exc:
            found.append({**entry, "running": False, "error": type(exc).__name__})
            continue
        try:
            writer.write(P.encode(P.request("hello", name="diffgem-lsp --status")))
            writer.write(P.encode(P.request(P.OP_STATUS)))
            while True:
                message = P.decode(await asyncio.wait_for(reader.readline(), timeout))
                if message.get("event") == P.EV_STATUS:
                    break
            keep = ("pid", "state", "model", "rss_mb", "peak_rss_mb", "clients", "queued", "totals")
            found.append({**entry, "running": True, **{k: message.get(k) for k in keep}})
        except (OSError, TimeoutError, P.ProtocolError) as exc:
            found.append({**entry, "running": False, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            writer.close()
    return found
