"""Fixtures for the diffusion-native features in real editors: "Fill the holes", "Repair syntax", K candidates
and live drafts.

Searched at test time against the real server and embedded model (like tests/lsp/oracle.py searches its
holes and selections), through a plain LSP client with the editors' settings; the first candidate whose
action really changes the document is the fixture, and what the server answered there is what the
editor's buffer must end up as. A search that finds nothing fails the test that asked, never skips.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from .conftest import TEST_SETTINGS

# The editors' settings for these tests: an invoked inline request returns up to three candidates
# (diffgem_lsp/edit_pipelines.infill_candidates); automatic ones stay at one, and stream their drafts
# (streamDrafts changes no answer: it only adds diffgem/draft notifications).
ACTION_SETTINGS = {**TEST_SETTINGS, "candidates": 3, "streamDrafts": True}
# An automatic request whose denoising sends this many drafts or more: each draft is followed by at
# least one more model forward before the answer, so the editor gets frames to draw them in.
MIN_DRAFTS = 2

# Functions with placeholders ("Fill the holes" is listed on the unit around the cursor: line 0, col 4).
HOLES_CANDIDATES = [
    "def clamp(x, low, high):\n    if x < low:\n        pass\n    if x > high:\n        pass\n"
    "    return x\n",
    "def is_even(n):\n    ...\n",
    "def area(width, height):\n    pass\n",
    "def greet(name):\n    # TODO\n    pass\n",
]
# Files that do not parse; the error is on line 1 ("Repair syntax" is listed there, as a quick fix).
REPAIR_CANDIDATES = [
    "def f(a, b):\n    return (a + b\n\n\nprint(f(1, 2))\n",
    "def g(x):\n    if x > 0\n        return x\n    return -x\n",
    "values = [1, 2, 3\nprint(values)\n",
]
# Holes (⟨⟩ marks the cursor) for an invoked request that must return two distinct candidates or more.
CANDIDATE_HOLES = [
    "def greet(name):\n    message = ⟨⟩\n    return message\n",
    "def total(values):\n    result = ⟨⟩\n    return result\n",
    "import os\n\n\ndef list_files(path):\n    return ⟨⟩\n",
]


# Holes for live drafts (⟨⟩ marks the cursor): code whose fill takes the model several steps.
DRAFT_HOLES = [
    "def total(values):\n    result = 0\n    for value in values:\n        result ⟨⟩\n    return result\n",
    "import os\n\n\ndef list_files(path):\n    return os.⟨⟩\n",
    "import math\n\n\ndef area(r):\n    return math.⟨⟩\n",
    "import os\n\npath = os.path.join(⟨⟩)\n",
    "def greet(name):\n    message = ⟨⟩\n    return message\n",
]


@dataclass(frozen=True)
class Action:
    """A code action fixture: listed at (line, character) of `text`; `after` is the document once the
    server's edit is applied."""

    title: str
    text: str
    line: int  # 0-based; the samples are ASCII, so characters are bytes and UTF-16 code units alike
    character: int
    after: str

    def for_driver(self, file: str) -> dict:
        return {"file": file, "title": self.title, "line": self.line, "character": self.character}


@dataclass(frozen=True)
class Candidates:
    """An invoked inline request at (line, character) and the server's candidates in its order, each
    with the document it makes once accepted."""

    text: str
    line: int
    character: int
    items: tuple[str, ...]
    afters: tuple[str, ...]

    def for_driver(self, file: str) -> dict:
        return {"file": file, "line": self.line, "character": self.character}


@dataclass(frozen=True)
class Drafts:
    """A hole whose automatic request streams `drafts` canvases before its non-empty answer `fill`."""

    text: str
    line: int
    character: int  # > 0: the editor test types the character before it
    drafts: int
    fill: str


@dataclass(frozen=True)
class Fixtures:
    holes: Action
    repair: Action
    candidates: Candidates
    drafts: Drafts


async def _resolved_edit(session, uri: str, text: str, line: int, title: str) -> str | None:
    from examples.editor_client import apply_edits

    position = types.Position(line=line, character=4)
    actions = await session.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    listed = [a for a in actions or [] if isinstance(a, types.CodeAction) and a.title == title]
    if not listed:
        return None
    resolved = await session.client.code_action_resolve_async(listed[0])
    if resolved.edit is None or not resolved.edit.document_changes:
        return None
    [change] = resolved.edit.document_changes
    return apply_edits(text, list(change.edits))


def _close(session, uri: str) -> None:
    session.client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def _search(server: Path) -> Fixtures:
    from diffgem_lsp import canvas as C
    from examples.editor_client import EditorSession, Hole, apply_edits

    session = EditorSession(dict(ACTION_SETTINGS), [str(server)])
    drafted: list[str] = []

    @session.client.feature("diffgem/draft")
    def _draft(params) -> None:
        drafted.append(getattr(params, "text", ""))

    await session.start()
    try:
        await session.wait_ready()
        found: dict[str, object] = {}
        tried: dict[str, list] = {"holes": [], "repair": [], "candidates": [], "drafts": []}
        for i, text in enumerate(HOLES_CANDIDATES):
            uri = f"file:///tmp/diffgem-holes-{i}.py"
            session.open(uri, text, "python")
            after = await _resolved_edit(session, uri, text, 0, "Fill the holes")
            _close(session, uri)
            tried["holes"].append(after)
            # A real fill: the text changed, fewer placeholders are left, and the file still parses.
            if after is not None and after != text and C.file_parses(after, "python"):
                found["holes"] = Action("Fill the holes", text, 0, 4, after)
                break
        for i, text in enumerate(REPAIR_CANDIDATES):
            uri = f"file:///tmp/diffgem-repair-{i}.py"
            session.open(uri, text, "python")
            after = await _resolved_edit(session, uri, text, 1, "Repair syntax")
            _close(session, uri)
            tried["repair"].append(after)
            assert not C.file_parses(text, "python"), text
            if after is not None and C.file_parses(after, "python"):
                found["repair"] = Action("Repair syntax", text, 1, 4, after)
                break
        for i, marked in enumerate(CANDIDATE_HOLES):
            hole = Hole.from_marked(marked)
            uri = f"file:///tmp/diffgem-candidates-{i}.py"
            session.open(uri, hole.text, "python")
            items = await session.inline(uri, hole.line, hole.character)
            _close(session, uri)
            texts = [str(item.insert_text) for item in items]
            tried["candidates"].append(texts)
            # One line each: an editor's ghost text of several lines is not one string to compare.
            distinct = len(texts) >= 2 and len(set(texts)) == len(texts)
            if distinct and all(t.strip() and "\n" not in t for t in texts):
                # Each item replaces its range (the cursor, or the rest of the line it repeats).
                afters = tuple(
                    apply_edits(hole.text, [types.TextEdit(range=item.range, new_text=text)])
                    for item, text in zip(items, texts, strict=True)
                    if item.range is not None
                )
                assert len(afters) == len(texts), items
                found["candidates"] = Candidates(
                    hole.text, hole.line, hole.character, tuple(texts), afters
                )
                break
        for i, marked in enumerate(DRAFT_HOLES):
            hole = Hole.from_marked(marked)
            uri = f"file:///tmp/diffgem-drafts-{i}.py"
            session.open(uri, hole.text, "python")
            drafted.clear()
            items = await session.inline(uri, hole.line, hole.character, automatic=True)
            _close(session, uri)
            fill = str(items[0].insert_text) if items else ""
            tried["drafts"].append((len(drafted), fill))
            if len(drafted) >= MIN_DRAFTS and fill.strip() and hole.character > 0:
                found["drafts"] = Drafts(hole.text, hole.line, hole.character, len(drafted), fill)
                break
        missing = [name for name in tried if name not in found]
        assert not missing, f"the shipped model exercises no candidate for {missing}: {tried}"
        return Fixtures(found["holes"], found["repair"], found["candidates"], found["drafts"])  # type: ignore[arg-type]
    finally:
        await session.stop()


def search(server: Path) -> Fixtures:
    return asyncio.run(_search(server))
