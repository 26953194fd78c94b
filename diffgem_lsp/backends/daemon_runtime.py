"""Where the shared model daemon lives and how it is started: the per-user directory, the start lock, the spawn.

No protocol here (that is `daemon.py`): paths, file modes, `flock` and `subprocess`. The daemon's socket sits
in a directory only its user can enter (0700), so the socket itself is the credential; where unix sockets
are missing it listens on 127.0.0.1 and writes its port and a random token to a 0600 file in that directory.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import diffgem_protocol as P

from .. import __version__
from ..isolation import worker_command, worker_env
from ..settings import Settings
from .base import BackendError
from .local import model_args

# Unix socket paths are limited to 107 bytes (sockaddr_un.sun_path); past that, the tcp fallback is used.
MAX_SOCKET_PATH = 100


def use_tcp() -> bool:
    return not hasattr(socket, "AF_UNIX") or os.environ.get("DIFFGEM_DAEMON_TCP") == "1"


def runtime_dir() -> Path:
    """$DIFFGEM_RUNTIME_DIR, else $XDG_RUNTIME_DIR/diffgem, else <tmp>/diffgem-<uid>; created 0700.

    An existing directory is used only if it is a real directory (not a link) owned by this user with no
    group or other access: otherwise another user could pre-create it and listen on our socket's path.
    """
    if override := os.environ.get("DIFFGEM_RUNTIME_DIR"):
        path = Path(override)
    elif xdg := os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(xdg) / "diffgem"
    else:
        path = Path(tempfile.gettempdir()) / f"diffgem-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ):
        raise BackendError(
            f"{path} must be a directory owned by you with mode 0700 (it holds the model daemon's socket)"
        )
    return path


@dataclass(frozen=True)
class DaemonPlace:
    """The files of one daemon: one daemon per (model, device, cache size, version) on a machine."""

    directory: Path
    key: str

    @classmethod
    def for_settings(cls, settings: Settings) -> DaemonPlace:
        model = str(Path(settings.model_path).expanduser().resolve()) if settings.model_path else ""
        ident = json.dumps(
            [
                model,
                settings.device,
                settings.precision,
                settings.prompt_cache_mb,
                P.PROTOCOL_VERSION,
                __version__,
            ]
        )
        return cls(runtime_dir(), hashlib.sha256(ident.encode()).hexdigest()[:12])

    @property
    def socket(self) -> Path:
        return self.directory / f"d-{self.key}.sock"

    @property
    def tcp_info(self) -> Path:
        return self.directory / f"d-{self.key}.tcp"

    @property
    def lock(self) -> Path:
        return self.directory / f"d-{self.key}.lock"

    @property
    def log(self) -> Path:
        return self.directory / f"d-{self.key}.log"

    def tcp(self) -> bool:
        return use_tcp() or len(str(self.socket)) > MAX_SOCKET_PATH


async def open_connection(
    place: DaemonPlace,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a running daemon (OSError if none); over tcp, the token goes first."""
    if place.tcp():
        try:
            info = json.loads(place.tcp_info.read_text())
        except (OSError, ValueError) as exc:
            raise ConnectionRefusedError(f"no daemon info at {place.tcp_info}") from exc
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", int(info["port"]), limit=16 << 20
        )
        writer.write(P.encode(P.request("auth", token=info["token"])))
        return reader, writer
    return await asyncio.open_unix_connection(str(place.socket), limit=16 << 20)


class StartLock:
    """An exclusive `flock` on the daemon's lock file: two editors starting at once make one daemon.

    Taken in a thread so the server's loop keeps answering while another process holds it.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    async def __aenter__(self) -> StartLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        self._fd = fd
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


async def spawn_daemon(place: DaemonPlace, settings: Settings, idle_exit_s: float) -> None:
    """Start a detached daemon (it forks away and its first process exits, so no zombie stays here)."""
    cmd = [
        *worker_command("diffgem_model.daemon"),  # python -I: nothing from a project is imported
        "--detach",
        *model_args(settings),  # the local worker's own options (one builder: local.model_args)
        "--idle-exit-s",
        str(idle_exit_s),
    ]
    cmd += ["--tcp-info", str(place.tcp_info)] if place.tcp() else ["--socket", str(place.socket)]
    log_fd = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd=place.directory,  # never the user's workspace (ARCHITECTURE.md: the worker starts isolated)
            env=worker_env(),  # no PYTHONPATH; compile caches in the per-user cache directory
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    if await proc.wait() != 0:
        raise BackendError(f"the model daemon did not start (see {place.log})")


def known_daemons() -> list[DaemonPlace]:
    """Daemons whose socket or tcp file is in this user's runtime directory (for `--status`)."""
    directory = runtime_dir()
    keys = sorted({p.stem[2:] for p in directory.glob("d-*") if p.suffix in (".sock", ".tcp")})
    return [DaemonPlace(directory, key) for key in keys]
