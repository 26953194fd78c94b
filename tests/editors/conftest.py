"""Shared helpers for the real-editor tests: where the repo, its venv and its server are."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EDITORS = REPO / "editors"
VENV_BIN = Path(sys.executable).parent

# Quick, deterministic server settings for every editor test.
# Equal step budgets, so that an automatic (as-you-type) request fills like an invoked one.
TEST_SETTINGS = {"invokedSteps": 8, "automaticSteps": 8, "debounceMs": 0, "seed": 0}


def server_path() -> Path:
    """The diffgem-lsp the editors start: $DIFFGEM_TEST_SERVER, else the one next to this interpreter
    (the repo .venv), else PATH. The variable tests the editors against another build of the server."""
    if override := os.environ.get("DIFFGEM_TEST_SERVER"):
        return Path(override)
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


# "Rewrite selection" without an edit: the server's reason, shown with the same words by every editor
# ("diffgem: " + reason). One per outcome, so the user knows which one happened.
REWRITE_OUTCOMES = (
    "the model kept the selection as it is",
    "the model's rewrite was empty: dropped",
    "the model's rewrite was cut by the token budget: dropped",
    "the model's rewrite would not parse: dropped",
)
OUTCOME_PREFIX = "diffgem: the model"


@dataclass(frozen=True)
class Rewrite:
    """A "Rewrite selection" fixture and what the server must do with it, computed in-process by
    tests/lsp/oracle.py against the real model with the editors' settings."""

    text: str  # the whole file
    start: tuple[int, int]  # (line, character), 0-based; the samples are ASCII
    end: tuple[int, int]
    after: str | None  # the whole file after the model's edit; None: the model offers no change
    reason: str  # when after is None: the server's reason, shown as "diffgem: " + reason

    def for_driver(self) -> dict:
        return {"text": self.text, "start": list(self.start), "end": list(self.end)}


@pytest.fixture(scope="session")
def rewrites() -> tuple[Rewrite, Rewrite]:
    """(a selection the shipped model really rewrites, a selection it keeps): both paths, every time."""
    from diffgem_lsp.settings import resolve_settings
    from tests.lsp import oracle

    settings = resolve_settings(TEST_SETTINGS)[0]
    changed, after = oracle.changing_rewrite(settings)
    kept, reason = oracle.kept_rewrite(settings)
    # The fixtures exercise their paths: one edit that changes the text, one outcome to explain.
    assert after is not None and after != changed.text, (changed, after)
    assert reason in REWRITE_OUTCOMES, reason
    return (
        Rewrite(changed.text, changed.start, changed.end, after, ""),
        Rewrite(kept.text, kept.start, kept.end, None, reason),
    )


def apply_text_edits(text: str, edits: list[dict]) -> str:
    """LSP TextEdits (non-overlapping, ASCII text: UTF-16 == str index) applied to `text`."""
    for edit in sorted(
        edits,
        key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]),
        reverse=True,
    ):
        lines = text.split("\n")
        start, end = edit["range"]["start"], edit["range"]["end"]
        head = "\n".join(lines[: start["line"]] + [lines[start["line"]][: start["character"]]])
        tail = "\n".join([lines[end["line"]][end["character"] :]] + lines[end["line"] + 1 :])
        text = head + edit["newText"] + tail
    return text


# Candidate holes (⟨⟩ marks the cursor). Which ones a given embedded checkpoint fills is up to the model,
# so the session picks the first one the real server fills (invoked and automatic alike) and every
# editor test uses that one: the tests check what the editor does with a fill, not the model's taste.
CANDIDATE_HOLES = [
    'def greet(name):\n    message = "Hello, ⟨⟩"\n    return message\n\n\nprint(greet("world"))\n',
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n'
    "    return ⟨⟩\n\n\nprint(fibonacci(10))\n",
    "def total(values):\n    result = 0\n    for value in values:\n        result ⟨⟩\n    return result\n",
    "import os\n\n\ndef list_files(path):\n    return os.⟨⟩\n",
    'def greet(name):\n    message = "Hello, " + ⟨⟩\n    return message\n',
    "def add(a, b):\n    return a ⟨⟩\n",
    "def count(n):\n    for i in range(⟨⟩):\n        print(i)\n",
    "values = [1, 2, 3]\nprint(len(⟨⟩))\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = ⟨⟩\n",
    "def is_even(n):\n    return n % 2 ⟨⟩\n",
    "import math\n\n\ndef area(r):\n    return math.⟨⟩\n",
    'name = input()\nprint("Hi " + ⟨⟩)\n',
]


@dataclass(frozen=True)
class FilledHole:
    text: str  # the file, marker removed
    line: int  # 0-based
    character: int  # 0-based; the hole lines are ASCII, so UTF-16 == byte column
    fill: str  # what the server answered here (for the record; tests assert structure only)

    @property
    def line_prefix(self) -> str:
        return self.text.split("\n")[self.line][: self.character]

    @property
    def line_text(self) -> str:
        return self.text.split("\n")[self.line]


async def _first_filled_hole(server: Path) -> FilledHole | None:
    from examples.editor_client import EditorSession, Hole

    session = EditorSession(dict(TEST_SETTINGS), [str(server)])
    await session.start()
    try:
        await session.wait_ready()
        for index, marked in enumerate(CANDIDATE_HOLES):
            hole = Hole.from_marked(marked)
            uri = f"file:///tmp/diffgem-hole-{index}.py"
            session.open(uri, hole.text, "python")
            invoked = await session.inline(uri, hole.line, hole.character)
            automatic = await session.inline(uri, hole.line, hole.character, automatic=True)
            texts = [item.insert_text for item in invoked + automatic]
            if invoked and automatic and all(isinstance(t, str) and t.strip() for t in texts):
                return FilledHole(hole.text, hole.line, hole.character, str(invoked[0].insert_text))
        return None
    finally:
        await session.stop()


@pytest.fixture(scope="session")
def filled_hole() -> FilledHole:
    found = asyncio.run(_first_filled_hole(server_path()))
    if found is None:
        pytest.fail(
            f"the embedded model filled none of the {len(CANDIDATE_HOLES)} candidate holes in "
            "tests/editors/conftest.py with these settings; the editor tests need one non-empty fill"
        )
    return found


@pytest.fixture(scope="session")
def diffusion_actions():
    """ "Fill the holes", "Repair syntax" and K candidates fixtures the real model exercises, with what
    the server answers for each (tests/editors/actions.py)."""
    from .actions import search

    return search(server_path())
