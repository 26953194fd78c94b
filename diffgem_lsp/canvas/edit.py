"""Edit canvases: a selection expanded to whole syntax nodes and lines, and the minimal edit for a rewrite.

Pure functions over document text; positions are UTF-16 `Position`s.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from tree_sitter import Node

from .languages import parse, parses_no_worse
from .positions import Position, byte_offset, offset_at, position_at


@dataclass(frozen=True)
class EditCanvas:
    language: str
    prefix: str
    suffix: str
    original: str  # the expanded selection: the canvas starts from this text
    start: Position  # expanded range, UTF-16
    end: Position


@dataclass(frozen=True)
class TextEditData:
    start: Position
    end: Position
    new_text: str


def _expand_to_nodes(text: str, language_id: str, start: int, end: int) -> tuple[int, int]:
    """Grow [start, end) so that it cuts no syntax node: the children of the smallest node covering the
    selection that the selection touches are taken whole."""
    tree = parse(text, language_id)
    if tree is None or start == end:
        return start, end
    data = text.encode("utf-8")
    b_start, b_end = byte_offset(text, start), byte_offset(text, end)
    node: Node | None = tree.root_node.descendant_for_byte_range(b_start, b_end)
    if node is None:
        return start, end
    touched = [c for c in node.children if c.end_byte > b_start and c.start_byte < b_end]
    if touched and node.type != "ERROR":
        b_start, b_end = min(b_start, touched[0].start_byte), max(b_end, touched[-1].end_byte)
    else:
        b_start, b_end = min(b_start, node.start_byte), max(b_end, node.end_byte)
    return len(data[:b_start].decode("utf-8", "ignore")), len(
        data[:b_end].decode("utf-8", "ignore")
    )


def build_edit_canvas(text: str, language_id: str, start: Position, end: Position) -> EditCanvas:
    """Expand a selection to whole syntax nodes, then to whole lines."""
    if end < start:
        start, end = end, start
    s, e = offset_at(text, start), offset_at(text, end)
    # Whitespace at the selection's edges (a selection ending at column 0, say) selects nothing.
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    s, e = _expand_to_nodes(text, language_id, s, e)
    s = text.rfind("\n", 0, s) + 1
    line_end = text.find("\n", e)
    e = len(text) if line_end < 0 else line_end
    return EditCanvas(
        language=language_id,
        prefix=text[:s],
        suffix=text[e:],
        original=text[s:e],
        start=position_at(text, s),
        end=position_at(text, e),
    )


def postprocess_edit(canvas: EditCanvas, candidate: str) -> str | None:
    """The rewritten region, or None if it is empty or makes the file parse worse."""
    new = candidate.replace("\r\n", "\n").rstrip()
    if not new.strip():
        return None
    first_indent = canvas.original[: len(canvas.original) - len(canvas.original.lstrip(" \t"))]
    if first_indent and not new.startswith((" ", "\t")):
        new = first_indent + new  # the model may drop the leading indentation it was given
    before = canvas.prefix + canvas.original + canvas.suffix
    if not parses_no_worse(before, canvas.prefix + new + canvas.suffix, canvas.language):
        return None
    return new


def minimal_edits(old: str, new: str, start: Position) -> list[TextEditData]:
    """The smallest set of replacements that turns `old` (which begins at `start`) into `new`."""

    def pos(text_before: str) -> Position:
        lines = text_before.split("\n")
        column = len(lines[-1].encode("utf-16-le")) // 2
        if len(lines) == 1:
            return Position(start.line, start.character + column)
        return Position(start.line + len(lines) - 1, column)

    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        a_start = sum(len(x) for x in old_lines[:i1])
        a_text, b_text = "".join(old_lines[i1:i2]), "".join(new_lines[j1:j2])
        # Trim the characters both sides share, so the edit covers only what changed.
        head = 0
        while head < min(len(a_text), len(b_text)) and a_text[head] == b_text[head]:
            head += 1
        tail = 0
        while (
            tail < min(len(a_text), len(b_text)) - head and a_text[-1 - tail] == b_text[-1 - tail]
        ):
            tail += 1
        a_from, a_to = a_start + head, a_start + len(a_text) - tail
        edits.append(
            TextEditData(pos(old[:a_from]), pos(old[:a_to]), b_text[head : len(b_text) - tail])
        )
    return edits
