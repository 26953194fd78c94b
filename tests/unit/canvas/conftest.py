"""Canvas test fixtures: a `golden` fixture that compares with (or, with `--update-golden`, rewrites) a file.

Works whether or not the project is installed: the repository root is put on sys.path if needed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"

if importlib.util.find_spec("diffgem_lsp") is None:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def golden(request):
    """golden(name, data): assert `data` equals golden/<name>.json; with --update-golden write it
    instead, to be reviewed in the diff."""

    def check(name: str, data: dict) -> None:
        path = GOLDEN / f"{name}.json"
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if not path.exists():
            pytest.fail(f"no golden file {path}: run pytest with --update-golden and review it")
        assert data == json.loads(path.read_text(encoding="utf-8")), f"golden {path} differs"

    return check
