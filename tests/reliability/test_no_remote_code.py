"""Every checkpoint load the worker can reach passes trust_remote_code=False (static check, no model).

Finding 6 of issue 14: without it, transformers asks "[y/N]" with input() on the worker's stdin (the
protocol pipe) when a checkpoint's config points at its own code, and the load hangs. The behaviour is
tested end to end in test_checkpoints.py; this catches a new load call before it ships.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOADERS = ("from_pretrained",)


def load_calls(path: Path) -> list[tuple[int, bool]]:
    """(line, passes trust_remote_code=False) for each `X.from_pretrained(...)` call in the file."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in LOADERS:
                safe = any(
                    k.arg == "trust_remote_code"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is False
                    for k in node.keywords
                )
                calls.append((node.lineno, safe))
    return calls


def test_worker_side_loads_never_trust_remote_code():
    files = sorted((ROOT / "model").glob("*.py")) + sorted((ROOT / "diffgem_lsp").rglob("*.py"))
    found = {f"{p.relative_to(ROOT)}:{line}": safe for p in files for line, safe in load_calls(p)}
    assert any(k.startswith("model/checkpoint.py") for k in found), (
        "no load call found: test is blind"
    )
    assert all(found.values()), [k for k, safe in found.items() if not safe]
