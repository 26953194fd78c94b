"""The shared model daemon: one resident engine serving every diffgem-lsp on this machine over a local socket.

Started on demand by `diffgem_lsp.backends.daemon` as `python -m diffgem_model.daemon`; speaks the worker's
line protocol (`diffgem_protocol`) to each connected server and reuses the worker's load/run/status code.
Request ids are per connection; the daemon maps them to its own. Generations run one at a time on one
engine thread, taken round-robin across clients, so one busy window cannot starve the others.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from typing import Any

import diffgem_protocol as P

from .worker import Worker, add_model_options, configure_threads

log = logging.getLogger("diffgem.daemon")


class Scheduler:
    """Pending requests per client, handed out round-robin; cancels reach queued and running requests."""

    def __init__(self) -> None:
        self._queues: dict[int, deque[P.GenerateRequest | P.PrefillRequest]] = {}
        self._order: deque[int] = deque()  # clients with work, next in turn first
        self._cond = threading.Condition()
        self._closed = False

    def put(self, client: int, req: P.GenerateRequest | P.PrefillRequest) -> None:
        with self._cond:
            queue = self._queues.setdefault(client, deque())
            queue.append(req)
            if client not in self._order:
                self._order.append(client)
            self._cond.notify()

    def take(self) -> tuple[int, P.GenerateRequest | P.PrefillRequest] | None:
        """Next request, from the client whose turn it is; None once closed."""
        with self._cond:
            while not self._order and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            client = self._order.popleft()
            queue = self._queues[client]
            req = queue.popleft()
            if queue:
                self._order.append(client)  # back of the line: the others go first
            return client, req

    def remove(self, predicate: Any) -> list[tuple[int, P.GenerateRequest | P.PrefillRequest]]:
        """Drop queued requests matching predicate(client, req); return them."""
        removed: list[tuple[int, P.GenerateRequest | P.PrefillRequest]] = []
        with self._cond:
            for client, queue in self._queues.items():
                keep: deque[P.GenerateRequest | P.PrefillRequest] = deque()
                for req in queue:
                    if predicate(client, req):
                        removed.append((client, req))
                    else:
                        keep.append(req)
                self._queues[client] = keep
                if not self._queues[client] and client in self._order:
                    self._order.remove(client)
        return removed

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Connection:
    def __init__(self, cid: int, writer: asyncio.StreamWriter, peer: str):
        self.cid = cid
        self.writer = writer
        self.peer = peer
        self.name = ""  # what the client said it is (diffgem-lsp pid, editor)
        self.since = time.time()
        self.requests = 0


class Daemon(Worker):
    """A Worker whose events go to the connection that asked, and whose requests come from many."""

    def __init__(self, args: argparse.Namespace, loop: asyncio.AbstractEventLoop):
        super().__init__(None, args)  # type: ignore[arg-type]  # no pipe: send() routes instead
        self.loop = loop
        self.scheduler = Scheduler()
        self.connections: dict[int, Connection] = {}
        self.owner: dict[int, tuple[int, int]] = {}  # daemon id -> (connection id, client's id)
        self._ids = itertools.count(1)
        self._cids = itertools.count(1)
        self.last_activity = time.monotonic()
        self.token: str | None = None  # tcp mode only

    # -- events to clients ---------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        """Called from the engine thread (results, drafts) and the loop; writes happen on the loop."""
        self.loop.call_soon_threadsafe(self._route, message)

    def _route(self, message: dict[str, Any]) -> None:
        gid = message.get("id")
        if gid is None:
            for conn in list(self.connections.values()):
                self._write(conn, message)
            return
        owner = self.owner.get(gid)
        if owner is None:
            return
        if message.get("event") in (P.EV_RESULT, P.EV_PREFILLED, P.EV_ERROR, P.EV_CANCELLED):
            del self.owner[gid]
            self.last_activity = time.monotonic()
        target = self.connections.get(owner[0])
        if target is not None:
            self._write(target, {**message, "id": owner[1]})

    def _write(self, conn: Connection, message: dict[str, Any]) -> None:
        if not conn.writer.is_closing():
            conn.writer.write(P.encode(message))

    def status(self) -> dict[str, Any]:
        base = super().status()
        clients = [
            {"id": c.cid, "name": c.name, "since": c.since, "requests": c.requests}
            for c in self.connections.values()
        ]
        return {
            **base,
            "daemon": True,
            "rss_mb": _rss_mb(),
            "clients": clients,
            "queued": self.scheduler.pending(),
        }

    def waiting(self) -> bool:
        return self.scheduler.pending() > 0

    # -- engine thread ---------------------------------------------------------------------------
    def serve(self) -> None:
        """Load, then the worker's request loop (Worker.serve) over the round-robin scheduler."""
        configure_threads(self.args.threads)  # here: the engine thread is the one that runs torch
        self.load()
        super().serve()

    def next_request(self) -> P.GenerateRequest | P.PrefillRequest | None:
        item = self.scheduler.take()
        return None if item is None else item[1]

    def dropped(self, req: P.GenerateRequest | P.PrefillRequest) -> bool:
        # Also dropped: a request whose client left while it was queued (_drop forgot its owner).
        return req.id in self.cancelled or req.id not in self.owner

    # -- connections (loop) ----------------------------------------------------------------------
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        peer = str(writer.get_extra_info("peername") or "unix")
        if sock is not None and sock.family == socket.AF_UNIX and not _same_user(sock):
            writer.close()  # the 0700 directory already keeps others out; this is belt and braces
            return
        if self.token is not None and not await self._authenticate(reader):
            writer.close()
            return
        conn = Connection(next(self._cids), writer, peer)
        self.connections[conn.cid] = conn
        self.last_activity = time.monotonic()
        log.info("client %d connected (%d now)", conn.cid, len(self.connections))
        self._write(
            conn, P.event(P.EV_HELLO, pid=os.getpid(), protocol=P.PROTOCOL_VERSION, daemon=True)
        )
        if self.state == "ready" and self.engine is not None:
            ready = P.event(
                P.EV_READY, model=self.engine.description, load_ms=0.0, layout=self.engine.layout
            )
            self._write(conn, ready)
        elif self.state == "error":
            self._write(conn, P.event(P.EV_LOAD_FAILED, message=self.load_error))
        try:
            while line := await reader.readline():
                if line.strip():
                    self._on_line(conn, line)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            log.warning("client %d: %s", conn.cid, exc)
        finally:
            self._drop(conn)
            writer.close()

    async def _authenticate(self, reader: asyncio.StreamReader) -> bool:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            message = P.decode(line)
        except (TimeoutError, P.ProtocolError, ConnectionError):
            return False
        assert self.token is not None
        return message.get("op") == "auth" and hmac.compare_digest(
            str(message.get("token", "")), self.token
        )

    def _on_line(self, conn: Connection, line: bytes) -> None:
        try:
            message = P.decode(line)
            op = message.get("op")
            if op in (P.OP_GENERATE, P.OP_PREFILL):
                self._generate(conn, message)
            elif op == P.OP_CANCEL:
                self._cancel(conn, int(message["id"]))
            elif op == P.OP_STATUS:
                self._write(conn, self.status())
            elif op == "hello":
                conn.name = str(message.get("name", ""))[:200]
            else:
                raise P.ProtocolError(f"unknown op {op!r}")
        except (P.ProtocolError, TypeError, KeyError, ValueError) as exc:
            self._write(conn, P.event(P.EV_ERROR, id=None, message=f"bad request: {exc}"))

    def _generate(self, conn: Connection, message: dict[str, Any]) -> None:
        """Queue a client's request under a daemon-wide id. Per-document supersede needs nothing more:
        the server cancels a document's older request when a newer one starts (session.supersede), and
        a cancel removes a queued request at once or stops a running one at its next step."""
        gid = next(self._ids)
        req: P.GenerateRequest | P.PrefillRequest
        if message.get("op") == P.OP_PREFILL:  # a prompt-cache warm-up (Worker.prefill)
            prefill = P.PrefillRequest.from_message(message)
            self.owner[gid] = (conn.cid, prefill.id)
            req = P.PrefillRequest(id=gid, params=prefill.params)
        else:
            client_req = P.GenerateRequest.from_message(message)
            self.owner[gid] = (conn.cid, client_req.id)
            req = P.GenerateRequest(id=gid, params=client_req.params, stream=client_req.stream)
        conn.requests += 1
        self.last_activity = time.monotonic()
        self.scheduler.put(conn.cid, req)

    def _cancel(self, conn: Connection, client_id: int) -> None:
        for gid, (cid, rid) in list(self.owner.items()):
            if cid == conn.cid and rid == client_id:
                self._cancel_gid(gid)

    def _cancel_gid(self, gid: int) -> None:
        removed = self.scheduler.remove(lambda _c, r: r.id == gid)
        if removed:
            self._route(P.event(P.EV_CANCELLED, id=gid))
        else:
            self.cancelled.add(gid)  # running: the engine stops at its next step

    def _drop(self, conn: Connection) -> None:
        self.connections.pop(conn.cid, None)
        self.scheduler.remove(lambda c, _r: c == conn.cid)
        for gid, (cid, _rid) in list(self.owner.items()):
            if cid == conn.cid:
                self.cancelled.add(gid)
                del self.owner[gid]
        self.last_activity = time.monotonic()
        log.info("client %d left (%d now)", conn.cid, len(self.connections))


def _same_user(sock: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _rss_mb() -> float:
    """Resident memory now (not the peak): what `diffgem-lsp --status` shows per daemon."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _idle_watch(daemon: Daemon, idle_s: float, server: asyncio.AbstractServer) -> None:
    while True:
        await asyncio.sleep(min(5.0, idle_s / 4))
        busy = daemon.connections or daemon.owner or daemon.current is not None
        if not busy and time.monotonic() - daemon.last_activity > idle_s:
            log.info("no clients for %.0f s: exiting", idle_s)
            server.close()
            return


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    daemon = Daemon(args, loop)
    if args.tcp_info:
        server = await asyncio.start_server(daemon.handle, "127.0.0.1", 0, limit=16 << 20)
        port = server.sockets[0].getsockname()[1]
        daemon.token = os.urandom(24).hex()
        # 0600 from creation (no window where the token is readable by others), in the 0700 directory.
        fd = os.open(args.tcp_info, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": port, "token": daemon.token, "pid": os.getpid()}, f)
    else:
        if os.path.exists(args.socket):
            os.unlink(
                args.socket
            )  # a stale socket of a dead daemon (the client holds the start lock)
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(daemon.handle, args.socket, limit=16 << 20)
        finally:
            os.umask(old_umask)
    log.info("daemon pid %d listening on %s", os.getpid(), args.tcp_info or args.socket)
    threading.Thread(target=daemon.serve, name="engine", daemon=True).start()
    watcher = asyncio.ensure_future(_idle_watch(daemon, args.idle_exit_s, server))
    # SIGTERM (a user's kill, a logout) ends the same way as idle exit: the socket file is removed.
    loop.add_signal_handler(signal.SIGTERM, watcher.cancel)
    try:
        await watcher
    except asyncio.CancelledError:
        log.info("terminated")
    finally:
        daemon.scheduler.close()
        for path in (args.socket, args.tcp_info):
            if path and os.path.exists(path):
                os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diffgem-daemon")
    parser.add_argument("--socket", default="", help="unix socket path (in a 0700 directory)")
    parser.add_argument("--tcp-info", default="", help="listen on 127.0.0.1; write port+token here")
    add_model_options(parser)  # the worker's own options, which Worker.load reads
    parser.add_argument("--idle-exit-s", type=float, default=600.0)
    parser.add_argument(
        "--detach", action="store_true", help="fork away at once (the starter does not reap us)"
    )
    args = parser.parse_args(argv)
    if not args.socket and not args.tcp_info:
        parser.error("one of --socket or --tcp-info is required")
    if args.detach and os.fork() > 0:
        # Before any thread or torch import: the starting diffgem-lsp waits for this first process
        # only, and the daemon it leaves behind is nobody's child to reap.
        os._exit(0)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s daemon %(levelname)s %(message)s"
    )
    for name, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ):
        os.environ.setdefault(name, value)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
