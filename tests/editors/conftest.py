"""Shared helpers for the real-editor tests: where the repo, its venv and its server are."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EDITORS = REPO / "editors"
VENV_BIN = Path(sys.executable).parent

# Quick, deterministic server settings for every editor test.
TEST_SETTINGS = {"invokedSteps": 8, "automaticSteps": 4, "debounceMs": 0, "seed": 0}


def server_path() -> Path:
    """The diffgem-lsp the editors start: next to this interpreter (the repo .venv), else PATH."""
    candidate = VENV_BIN / "diffgem-lsp"
    if candidate.exists():
        return candidate
    found = shutil.which("diffgem-lsp")
    if not found:
        pytest.fail("diffgem-lsp is not installed (pip install -e . into the venv)")
    return Path(found)


def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose editor config/data/state dirs are empty temporary folders."""
    env = dict(os.environ)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = tmp_path / "xdg" / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir(exist_ok=True)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env
