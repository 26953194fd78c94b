"""The local backend: one resident model worker process per server, spoken to over its pipes.

Runs on the server's asyncio loop; the worker (`python -m diffgem_model.worker`) speaks `diffgem_protocol`.
Nothing here blocks the loop, and a dead worker turns into an error for the requests in flight plus a
restart in the background.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path
from typing import Any

import diffgem_protocol as P

from ..isolation import state_dir, worker_command, worker_env
from ..settings import Settings
from .base import BackendError, DraftCallback, StateCallback
from .exchange import exchange, final_event

log = logging.getLogger("diffgem.backend.local")


def _debug() -> bool:
    """Tracebacks on log lines at debug level only."""
    return log.isEnabledFor(logging.DEBUG)


# More crashes than this within CRASH_WINDOW_S stop automatic restarts (no crash loop): the user is told
# once, and `diffgem.restartWorker` starts it again.
MAX_CRASHES = 3
CRASH_WINDOW_S = 60.0
# A worker with requests waiting is pinged this often; no answer within STALL_TIMEOUT_S means stalled.
PING_INTERVAL_S = 2.0
STALL_TIMEOUT_S = 10.0


def model_args(settings: Settings) -> list[str]:
    """The model options of a worker's or the daemon's command line, which model/worker.py
    `add_model_options` parses for both: one builder, so a setting cannot reach one process and not
    the other. The checkpoint path is made absolute here, against the server's directory: neither
    process starts there (the worker in state_dir(), the daemon in its runtime directory)."""
    args = [
        "--device",
        settings.device,
        "--precision",
        settings.precision,
        "--prompt-cache-mb",
        str(settings.prompt_cache_mb),
    ]
    if settings.model_path:
        args += ["--model", str(Path(settings.model_path).expanduser().resolve())]
    return args


class LocalWorker:
    """The `Backend` that runs the model in a child process of this server."""

    supports_prefill = True  # base.Prefiller: the worker warms its prompt cache on request
    # The wire's batched candidates and multi-hole requests (diffgem_protocol), answered by model/worker.py.
    supports_batched = True

    def __init__(self, settings: Settings, on_state: StateCallback = lambda s, m: None):
        self.settings = settings
        self.on_state = on_state  # (state, message) -> status notification / progress
        self.state = "stopped"
        self.model = ""
        self.layout: str | None = None  # the checkpoint's prompt layout, from the ready event
        self.pid: int | None = None
        self.error: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._drafts: dict[int, DraftCallback] = {}
        self._prefills: set[int] = set()  # ids in _pending that are prefills (they show no state)
        self._status_waiters: list[asyncio.Future[dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._crashes: list[float] = []
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._ready.clear()
        self.error = None
        self._set_state("loading", "starting model worker")
        try:
            # Isolated (-I, see isolation.worker_command) and started in our private directory, with
            # no PYTHONPATH: nothing in the user's project or environment is imported by the worker.
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=16 << 20,  # drafts of long canvases are long lines
                cwd=state_dir(),
                env=worker_env(),
            )
        except (OSError, ValueError) as exc:  # e.g. no such interpreter, an unusable directory
            self.error = f"the model worker could not be started: {exc}"
            log.error("%s", self.error, exc_info=_debug())
            self._set_state("error", self.error)
            self._ready.set()
            return
        self.pid = self._proc.pid
        log.info("worker started pid=%s", self.pid)
        self._spawn(self._read_events(self._proc))
        self._spawn(self._read_stderr(self._proc))
        self._spawn(self._watch(self._proc))

    def command(self) -> list[str]:
        """The worker's command line (this Python, so the worker is the same install as the server)."""
        return [*worker_command("diffgem_model.worker"), *model_args(self.settings)]

    async def stop(self) -> None:
        self._stopping = True
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        # The worker holds no state worth saving: stop it at once, so that `shutdown` is answered
        # well within clients' timeouts (eglot waits 1.5 s).
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 0.5)
        except TimeoutError:
            log.debug("worker ignored SIGTERM for 0.5 s: killing it", exc_info=True)
            proc.kill()
            await proc.wait()
        self._fail_pending("model worker stopped")
        self._set_state("stopped", "model worker stopped")

    async def restart(self, settings: Settings | None = None) -> None:
        if settings is not None:
            self.settings = settings
        self._crashes.clear()
        await self.stop()
        await self.start()

    async def wait_ready(self, timeout: float) -> None:
        if self._proc is None and self.state != "error":
            await self.start()
        if self.state == "error" and not self._ready.is_set():
            raise BackendError(self.error or "model worker is not running")
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
        """Run one generation. Cancelling the awaiting task cancels the generation in the worker."""
        await self.wait_ready(timeout=120)
        request_id = next(self._ids)
        request = P.GenerateRequest(id=request_id, params=params, stream=on_draft is not None)
        if on_draft is not None:
            self._drafts[request_id] = on_draft
        try:
            event = await exchange(
                self._pending,
                request_id,
                request.to_message(),
                self._send,
                self._send_quietly,
                on_sent=lambda: self._set_state("generating", ""),
            )
        finally:
            self._drafts.pop(request_id, None)
            if self._pending.keys() <= self._prefills and self.state == "generating":
                self._set_state("ready", self.model)
        return P.GenerationResult.from_message(final_event(event, "generation")["result"])

    async def prefill(self, params: P.GenerateParams) -> dict[str, Any]:
        """Warm the worker's prompt cache for `params` (the protocol's prefill); its EV_PREFILLED
        figures. Cancelling the awaiting task cancels it there; no "generating" state: nothing shows."""
        await self.wait_ready(timeout=120)
        request_id = next(self._ids)
        message = P.PrefillRequest(id=request_id, params=params).to_message()
        self._prefills.add(request_id)
        try:
            event = await exchange(
                self._pending, request_id, message, self._send, self._send_quietly
            )
        finally:
            self._prefills.discard(request_id)
        return final_event(event, "prefill")

    async def status(self, timeout: float = 5.0) -> dict[str, Any]:
        if self._proc is None or self._proc.returncode is not None:
            return {"state": self.state, "pid": None, "model": self.model, "error": self.error}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._status_waiters.append(future)
        self._send(P.request(P.OP_STATUS))
        return await asyncio.wait_for(future, timeout)

    # -- internals -----------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise BackendError("model worker is not running")
        proc.stdin.write(P.encode(message))

    def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except (BackendError, ConnectionError, RuntimeError):
            # Best effort (a cancel for a worker that is gone): the request fails on its own anyway.
            log.debug("could not send %s", message.get("op"), exc_info=True)

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

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            text = line.decode(errors="replace").rstrip()
            if text:
                log.debug("worker: %s", text)

    async def _read_events(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                message = P.decode(line)
            except P.ProtocolError as exc:
                version = P.version_of(line)
                if version is not None and version != P.PROTOCOL_VERSION:
                    self._incompatible(proc, version)
                    break
                log.warning("worker sent a bad line: %s", exc, exc_info=_debug())
                continue
            self._on_event(message)
        code = await proc.wait()
        if proc is self._proc and not self._stopping:
            self._on_crash(code)

    def _incompatible(self, proc: asyncio.subprocess.Process, version: object) -> None:
        """A worker from another install: restarting would only repeat it, so stop it and say why."""
        self.error = (
            f"the model worker speaks protocol version {version!r} but this server speaks "
            f"{P.PROTOCOL_VERSION}: diffgem-lsp and its model package come from different installs "
            "(reinstall diffgem-lsp, then run diffgem.restartWorker)"
        )
        log.error("%s", self.error)
        self._stopping = True  # its exit is not a crash: no automatic restart
        self._proc = None
        if proc.returncode is None:
            proc.kill()
        self._fail_pending(self.error)
        self._set_state("error", self.error)
        self._ready.set()

    def _on_event(self, message: dict[str, Any]) -> None:
        name = message.get("event")
        if name == P.EV_READY:
            self.model = message.get("model", "")
            self.layout = message.get("layout")
            self._ready.set()
            self._set_state("ready", self.model)
        elif name == P.EV_LOAD_FAILED:
            self.error = message.get("message", "model could not be loaded")
            self._set_state("error", self.error)
            self._ready.set()
        elif name in (P.EV_RESULT, P.EV_PREFILLED, P.EV_ERROR, P.EV_CANCELLED):
            future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
            elif name == P.EV_ERROR and message.get("id") is None:
                log.warning("worker: %s", message.get("message"))
        elif name == P.EV_DRAFT:
            callback = self._drafts.get(message.get("id"))  # type: ignore[arg-type]
            if callback is not None:
                callback(message.get("text", ""))
        elif name == P.EV_STATUS:
            while self._status_waiters:  # skip waiters that timed out: the answer is the next one's
                waiter = self._status_waiters.pop(0)
                if not waiter.done():
                    waiter.set_result(message)
                    break
        elif name == P.EV_HELLO and message.get("protocol") != P.PROTOCOL_VERSION:
            proc = self._proc
            if proc is not None:
                self._incompatible(proc, message.get("protocol"))

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """While requests wait, ping the worker; one that cannot answer (SIGSTOP, a hung native call)
        is killed and replaced, and its requests fail at once instead of waiting forever.

        The worker answers status from its reader thread, so a long generation still answers.
        """
        while proc is self._proc and proc.returncode is None:
            await asyncio.sleep(PING_INTERVAL_S)
            if not self._pending or proc is not self._proc:
                continue
            try:
                await self.status(timeout=STALL_TIMEOUT_S)
            except TimeoutError:
                if proc is self._proc and proc.returncode is None:
                    self._stalled(proc)
                return
            except BackendError:
                return

    def _stalled(self, proc: asyncio.subprocess.Process) -> None:
        reason = f"model worker is not responding (no answer in {STALL_TIMEOUT_S:.0f} s)"
        log.error("%s: killing pid %s and starting a new one", reason, proc.pid)
        self._proc = None
        self._ready.clear()
        proc.kill()
        self._fail_pending(reason + "; it is being restarted")
        self._spawn(self.start())

    def _on_crash(self, code: int | None) -> None:
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < CRASH_WINDOW_S] + [now]
        reason = f"model worker exited (code {code})"
        log.error("%s; %d request(s) failed", reason, len(self._pending))
        self._fail_pending(reason + " during the request; it is restarting")
        self._proc = None
        self._ready.clear()
        if len(self._crashes) > MAX_CRASHES:
            self.error = (
                f"{reason}; it crashed {len(self._crashes)} times in a minute, not restarting"
            )
            self._set_state("error", self.error)
            return
        self._spawn(self.start())
