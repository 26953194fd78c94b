"""Transports for the language server: stdio, and TCP with one client per server (and an optional token).

Owns the read loop and the process's exit code; messages go to `rpc.DiffgemProtocol.receive`. Replaces
pygls' `start_io`/`start_tcp`, which never resynchronise after a bad frame, swap the reply writer when a
second TCP client connects, and lose the exit code of `exit`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from pygls.io_ import StdoutWriter

from .framing import GIVE_UP_S, STALL_S, FrameParser, Malformed, Message
from .rpc import INVALID_REQUEST, DiffgemProtocol

log = logging.getLogger("diffgem.transport")

Read = Callable[[], Awaitable[bytes]]
OnClose = Callable[[], Awaitable[None]]
TOKEN_OPTION = "token"  # initializationOptions key a TCP client presents its token under
REFUSE_WAIT_S = 2.0  # how long a refused connection may take to send the request we answer


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


async def pump(
    read: Read,
    on_event: Callable[[Message | Malformed], bool | None],
    parser: FrameParser | None = None,
) -> None:
    """Read until EOF, or until `on_event` returns False; a silence lets the parser settle bad frames."""
    parser = parser or FrameParser()
    idle = 0.0
    while True:
        timeout: float | None = None
        if parser.pending() and idle < GIVE_UP_S:
            timeout = STALL_S if idle < STALL_S else GIVE_UP_S - idle
        try:
            data = await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            idle += timeout or 0.0
            events = parser.stall(idle)
        else:
            if not data:
                for event in parser.stall(GIVE_UP_S):  # EOF: nothing more will come
                    on_event(event)
                return
            idle = 0.0
            events = parser.feed(data)
        for event in events:
            if on_event(event) is False:
                return


class _StdinReader:
    """Blocking reads of fd 0 on a thread, handed to the loop (works for pipes, files and ttys)."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        # At most a few chunks read ahead: a client writing faster than we handle then blocks on its
        # pipe (backpressure) instead of filling our memory.
        self.room = threading.Semaphore(4)
        self.fd, self.loop = fd, loop
        threading.Thread(target=self._run, name="lsp-stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            self.room.acquire()
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:
                data = b""
            try:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, data)
            except RuntimeError:  # loop closed: the server is exiting
                return
            if not data:
                return

    async def read(self) -> bytes:
        data = await self.queue.get()
        self.room.release()
        return data


def _on_signals(stop: Callable[[int], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop, 128 + sig)


async def _finish(protocol: DiffgemProtocol, on_close: OnClose | None) -> int:
    if on_close is not None:
        try:
            await asyncio.wait_for(on_close(), 5.0)
        except Exception:
            log.exception("closing the server failed")
    protocol._server.shutdown()
    if protocol.exit_code is not None:
        return protocol.exit_code
    return 0 if protocol.shutdown_received else 1  # the stream ended without exit


def serve_stdio(protocol: DiffgemProtocol, on_close: OnClose | None = None) -> int:
    """Serve one client over stdin/stdout; the process's exit code."""
    # The LSP stream keeps a private copy of stdout; fd 1 then points at stderr, so a stray print
    # (a library, a warning) can never corrupt the stream.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return asyncio.run(_serve_stdio(protocol, out, on_close))


async def _serve_stdio(protocol: DiffgemProtocol, out: Any, on_close: OnClose | None) -> int:
    protocol.set_writer(StdoutWriter(out))
    done = asyncio.Event()

    def stop(code: int) -> None:
        log.info("signal: stopping (code %d)", code)
        protocol.exit_code = code
        done.set()

    _on_signals(stop)
    protocol.on_exit = done.set
    reader = _StdinReader(0, asyncio.get_running_loop())
    reading = asyncio.ensure_future(pump(reader.read, protocol.receive))
    waiting = asyncio.ensure_future(done.wait())
    await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
    reading.cancel()
    waiting.cancel()
    return await _finish(protocol, on_close)


def serve_tcp(
    protocol: DiffgemProtocol,
    host: str,
    port: int,
    token: str | None = None,
    on_close: OnClose | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> int:
    """Serve the first client that connects (and presents `token`, if set); refuse the others."""
    return asyncio.run(_serve_tcp(protocol, host, port, token, on_close, on_listening))


async def _serve_tcp(
    protocol: DiffgemProtocol,
    host: str,
    port: int,
    token: str | None,
    on_close: OnClose | None,
    on_listening: Callable[[int], None] | None,
) -> int:
    done = asyncio.Event()
    session: list[asyncio.StreamWriter] = []  # the one admitted connection

    def stop(code: int) -> None:
        protocol.exit_code = code
        done.set()

    def admit(writer: asyncio.StreamWriter, first: Message | Malformed) -> str | None:
        """Why this connection may not have the session, or None (then it has it)."""
        if session:
            return "this server already serves another client; start another diffgem-lsp"
        if token is not None:
            value = first.value if isinstance(first, Message) else None
            options = (
                value.get("params", {}).get("initializationOptions")
                if isinstance(value, dict) and isinstance(value.get("params"), dict)
                else None
            )
            given = options.pop(TOKEN_OPTION, None) if isinstance(options, dict) else None
            if not isinstance(given, str) or not hmac.compare_digest(given, token):
                return "wrong or missing token: this server needs initializationOptions.token"
        session.append(writer)
        protocol.set_writer(writer)
        return None

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if session:  # refuse at once: the client learns why from its first request's answer
            await _refuse(reader, writer, "this server already serves another client")
            return
        admitted = False

        def on_event(event: Message | Malformed) -> bool:
            nonlocal admitted
            if not admitted:
                refusal = admit(writer, event)
                if refusal is not None:
                    log.warning("refused connection from %s: %s", peer, refusal)
                    _answer_refusal(writer, event, refusal)
                    return False
                admitted = True
                log.info("client connected from %s", peer)
            protocol.receive(event)
            return not done.is_set()

        try:
            await pump(lambda: reader.read(1 << 16), on_event)
        except ConnectionError:
            pass
        if admitted:
            done.set()  # the session's client left: the server's work is over
        writer.close()

    server = await asyncio.start_server(connection, host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("listening on %s:%s (one client%s)", host, bound, ", token required" if token else "")
    if on_listening is not None:
        on_listening(bound)
    _on_signals(stop)
    protocol.on_exit = done.set
    async with server:
        await done.wait()
    return await _finish(protocol, on_close)


def _answer_refusal(writer: asyncio.StreamWriter, event: Message | Malformed, text: str) -> None:
    message = f"diffgem-lsp: {text}"
    writer.write(
        frame(
            {
                "jsonrpc": "2.0",
                "method": "window/showMessage",
                "params": {"type": 1, "message": message},
            }
        )
    )
    msg_id = (
        event.value.get("id")
        if isinstance(event, Message) and isinstance(event.value, dict)
        else None
    )
    if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
        error = {"code": INVALID_REQUEST, "message": message}
        writer.write(frame({"jsonrpc": "2.0", "id": msg_id, "error": error}))


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, text: str) -> None:
    """Tell a second client why it cannot connect, answering its first request, then close."""
    first: list[Message | Malformed] = []

    def on_event(event: Message | Malformed) -> bool:
        first.append(event)
        return False

    try:
        await asyncio.wait_for(pump(lambda: reader.read(1 << 16), on_event), REFUSE_WAIT_S)
    except (TimeoutError, ConnectionError):
        pass
    log.warning("refused a second connection: %s", text)
    _answer_refusal(writer, first[0] if first else Malformed("", b""), text)
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


def read_token(token_file: str | None) -> str | None:
    """The TCP token: DIFFGEM_LSP_TOKEN, or the first line of `token_file`; None when neither is set."""
    token = os.environ.get("DIFFGEM_LSP_TOKEN")
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.readline().strip()
    return token or None


def run_server(server: Any, tcp_port: int | None, token_file: str | None = None) -> int:
    """Serve `server` (a DiffgemServer) over stdio or TCP; the process's exit code."""
    protocol = server.protocol
    assert isinstance(protocol, DiffgemProtocol), type(protocol)

    async def close() -> None:  # exit, EOF or a signal: no request or worker outlives the server
        server.session.cancel_all()
        await server.session.backend.stop()

    if tcp_port is None:
        return serve_stdio(protocol, close)
    return serve_tcp(protocol, "127.0.0.1", tcp_port, read_token(token_file), close)
