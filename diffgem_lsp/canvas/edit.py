"""Edit canvases: a selection expanded to whole syntax nodes and lines, and the minimal edit for a rewrite.

Pure functions over document text; positions are UTF-16 `Position`s (convert through positions.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from tree_sitter import Node

from .languages import grammar_of, no_worse, parse, spliced_score, syntax_score
from .lines import eol_of, indent_of, indent_width
from .positions import Position, byte_offset, line_bounds, offset_at, offset_of_byte, position_at
from .syntax import BODY_NODES


@dataclass(frozen=True)
class EditCanvas:
    language: str
    prefix: str  # the document before the expanded range (ends at a line start)
    suffix: str  # the document after it (starts at a line break, or is empty)
    original: str  # the expanded selection: the canvas starts from this text
    start: Position  # expanded range, UTF-16
    end: Position
    eol: str = "\n"  # the document's line ending; rewrites are returned with it


@dataclass(frozen=True)
class TextEditData:
    start: Position
    end: Position
    new_text: str


def _expand_to_nodes(text: str, language_id: str, start: int, end: int) -> tuple[int, int]:
    """Grow [start, end) so that it cuts no syntax node. The smallest node covering the selection is
    taken whole, unless it is a list of things (a body, a file, a literal's entries): then only the
    children the selection touches are (two statements of a body stay two statements)."""
    tree = parse(text, language_id)
    if tree is None or start == end:
        return start, end
    data = text.encode("utf-8", "surrogatepass")
    b_start, b_end = byte_offset(text, start), byte_offset(text, end)
    node: Node | None = tree.root_node.descendant_for_byte_range(b_start, b_end)
    if node is None:
        return start, end
    if node.is_error:
        # Broken code: node boundaries mean little there, and an ERROR node may span the file.
        return start, end
    touched = [c for c in node.children if c.end_byte > b_start and c.start_byte < b_end]
    if touched and (node.parent is None or node.type in BODY_NODES):
        b_start, b_end = min(b_start, touched[0].start_byte), max(b_end, touched[-1].end_byte)
    else:
        b_start, b_end = min(b_start, node.start_byte), max(b_end, node.end_byte)
    return offset_of_byte(data, b_start), offset_of_byte(data, b_end)


def build_edit_canvas(text: str, language_id: str, start: Position, end: Position) -> EditCanvas:
    """Expand a selection to whole syntax nodes, then to whole lines. An empty selection takes its
    line. Raises PositionError for a position past the end of the document."""
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
    e = line_bounds(text, text.count("\n", 0, e))[1]  # the end of the last line, before its "\r\n"
    return EditCanvas(
        language=language_id,
        prefix=text[:s],
        suffix=text[e:],
        original=text[s:e],
        start=position_at(text, s),
        end=position_at(text, e),
        eol=eol_of(text),
    )


def _rest_indent(text: str) -> int | None:
    """The smallest indentation among the non-blank lines after the first."""
    widths = [indent_width(line) for line in text.split("\n")[1:] if line.strip()]
    return min(widths) if widths else None


def _reindented(original: str, new: str) -> list[str]:
    """Ways to restore the indentation a model may drop, likeliest first: the original's first-line
    indentation on every line (the whole rewrite came back dedented), or on the first line only (the
    model dropped just the indentation it was given before the first token)."""
    indent = indent_of(original)
    if not indent or new.startswith(indent):
        return [new]
    lines = new.split("\n")
    every = "\n".join(indent + line if line.strip() else line for line in lines)
    first = "\n".join([indent + lines[0].lstrip(" \t"), *lines[1:]])
    # Lines after the first indented as in the original: only the first line lost its indentation.
    # (Both may parse: braced languages do not care, and tree-sitter-python is lenient.)
    if _rest_indent(new) is not None and _rest_indent(new) == _rest_indent(original):
        return [first, every]
    return [every, first]


def _code_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def _drop_echoed_context(canvas: EditCanvas, new: str) -> str:
    """Drop lines a model copied from around the selection: the code just after it repeated at the
    end of the rewrite, or the code just before it at the start (unless the original had them)."""
    lines = new.split("\n")
    original = _code_lines(canvas.original)
    after = _code_lines(canvas.suffix[:4000])
    for m in range(min(len(after), len(lines) - 1), 0, -1):
        tail = [line.strip() for line in lines[-m:]]
        if tail == after[:m] and original[-m:] != tail:
            lines = lines[:-m]
            break
    before = _code_lines(canvas.prefix[-4000:])
    for m in range(min(len(before), len(lines) - 1), 0, -1):
        head = [line.strip() for line in lines[:m]]
        if head == before[-m:] and original[:m] != head:
            lines = lines[m:]
            break
    return "\n".join(lines).strip("\n")


def postprocess_edit(canvas: EditCanvas, candidate: str) -> str | None:
    """The rewritten region, or None if it is empty or makes the file parse worse.

    Restores indentation the model dropped, drops context it echoed, strips trailing whitespace.
    """
    new = candidate.replace("\r\n", "\n").lstrip("\n").rstrip()
    if not new.strip():
        return None
    eol = canvas.eol
    new = "\n".join(line.rstrip() for line in new.split("\n"))
    new = _drop_echoed_context(canvas, new)
    options = [o.replace("\n", eol) for o in _reindented(canvas.original.replace(eol, "\n"), new)]
    if grammar_of(canvas.language) is None:
        return options[0]
    document = canvas.prefix + canvas.original + canvas.suffix
    start, end = len(canvas.prefix), len(canvas.prefix) + len(canvas.original)
    bar = syntax_score(document, canvas.language, (start, end))
    for option in options:
        if no_worse(bar, spliced_score(document, canvas.language, start, end, option)):
            return option
    return None


def minimal_edits(old: str, new: str, start: Position) -> list[TextEditData]:
    """The smallest set of replacements that turns `old` (which begins at `start`) into `new`.

    Lines are matched with difflib; each changed run of lines is then trimmed of the characters it
    shares at both ends, so that a one-character change is a one-character edit. Ranges refer to the
    document before any edit (LSP applies a WorkspaceEdit's edits to the original text).
    """

    def pos(offset: int) -> Position:
        inner = position_at(old, offset)  # UTF-16, relative to old
        if inner.line == 0:
            return Position(start.line, start.character + inner.character)
        return Position(start.line + inner.line, inner.character)

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
        edits.append(TextEditData(pos(a_from), pos(a_to), b_text[head : len(b_text) - tail]))
    return edits
