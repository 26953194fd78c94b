"""Where the server and its worker may write, and how the worker is started so nothing of the workspace runs.

Pure process setup (paths, argv, environment, file modes); no LSP, no torch. Used by the CLI (log file)
and the local backend (worker launch).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "diffgem-lsp"
# Environment variables that would make the worker's Python import code from elsewhere than its
# installation (https://docs.python.org/3/using/cmdline.html#environment-variables).
SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "PYTHONINSPECT")


def private_dir(path: Path) -> Path:
    """`path`, created 0700 if missing; refused if another user owns it (e.g. planted in /tmp)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to uid {info.st_uid}, not to this user")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def state_dir() -> Path:
    """The per-user directory for caches and the worker's working directory (XDG base directories)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return private_dir(Path(base) / APP)


def open_private(path: str | os.PathLike[str], mode: str = "a") -> int:
    """Open for appending/writing, created 0600 whatever the umask; an existing file is made 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.fchmod(fd, 0o600)
    return fd


def worker_command(module: str, *args: str) -> list[str]:
    """`python -I -m module`: -I keeps the working directory, user site-packages and PYTHON* variables
    off sys.path, so a `queue.py` or `diffgem_model/` in the user's project is never imported."""
    return [sys.executable, "-I", "-m", module, *args]


def worker_env(cache: Path | None = None) -> dict[str, str]:
    """The server's environment without PYTHON* search paths, with compile caches in the per-user dir.

    torch.compile (inductor) and triton default to a directory under the shared /tmp, where another
    user could pre-create it: they go to our private cache directory instead.
    """
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    cache = cache or state_dir()
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "torchinductor"))
    env.setdefault("TRITON_CACHE_DIR", str(cache / "triton"))
    env["HF_HUB_OFFLINE"] = "1"  # the worker never downloads: checkpoints are local directories
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env
