"""Infill canvases: the text around the cursor and the hole to fill, and post-processing of a fill.

Pure functions: document text + position in, plain dataclasses out (no LSP types, no model). The hole's
kind decides how much the model may write and where its answer is cut (llm-ls, Tabby and SAFIM do the same).
"""

from __future__ import annotations

from dataclasses import dataclass

from .languages import GRAMMARS, INDENTED, parse, parses_no_worse
from .positions import Position, offset_at

# Token budgets per hole kind: a single-line fill is short; a block may take several canvases.
MAX_TOKENS = {"expression": 24, "line": 48, "block": 128}
BLOCK_OPENERS = (":", "{", "=>")
# The prefix window starts at a line boundary chosen in bands of this many characters, so that typing
# keeps the window's first character fixed and the worker's prompt cache stays valid.
WINDOW_BAND = 2048


@dataclass(frozen=True)
class InfillCanvas:
    language: str
    prefix: str  # window of text before the cursor sent to the model
    suffix: str  # window of text after the cursor sent to the model
    position: Position  # cursor, UTF-16
    hole_kind: str  # "expression" | "line" | "block"
    max_tokens: int
    indent: str  # indentation of the cursor's line
    line_suffix: str  # text after the cursor on its line
    before: str  # the whole document before the cursor (for post-processing)
    after: str  # the whole document after the cursor


@dataclass(frozen=True)
class InfillResult:
    insert_text: str
    replace_end_character: int  # UTF-16 column on the cursor's line where the replaced text ends


def _window_start(text: str, offset: int, chars: int) -> int:
    if offset <= chars:
        return 0
    banded = ((offset - chars) // WINDOW_BAND) * WINDOW_BAND
    start = text.find("\n", banded)
    return offset if start < 0 or start >= offset else start + 1


def _window_end(text: str, offset: int, chars: int) -> int:
    if len(text) - offset <= chars:
        return len(text)
    end = text.rfind("\n", offset, offset + chars)
    return offset + chars if end < 0 else end + 1


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _previous_code_line(before: str) -> str:
    for line in reversed(before.split("\n")[:-1]):
        if line.strip():
            return line
    return ""


def _next_code_line(after: str) -> str | None:
    for line in after.split("\n")[1:]:
        if line.strip():
            return line
    return None


def _in_comment(text: str, offset: int, language: str) -> bool:
    tree = parse(text, language)
    if tree is None:
        return False
    point = len(text[:offset].encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(max(point - 1, 0), point)
    while node is not None:
        if "comment" in node.type and node.start_byte < point <= node.end_byte:
            # The cursor at the very end of a line comment still counts as inside it.
            return True
        node = node.parent
    return False


def hole_kind(before_line: str, after_line: str, before: str, after: str) -> str:
    """Rest of expression (text follows on the line), a block (a header's empty body), or rest of line."""
    if after_line.strip():
        return "expression"
    if before_line.strip():
        return "block" if before_line.rstrip().endswith(BLOCK_OPENERS) else "line"
    header = _previous_code_line(before)
    if header.rstrip().endswith(BLOCK_OPENERS):
        following = _next_code_line(after)
        if following is None or len(_indent_of(following)) <= len(_indent_of(header)):
            return "block"
    return "line"


def build_infill_canvas(
    text: str,
    language_id: str,
    position: Position,
    *,
    prefix_chars: int = 6000,
    suffix_chars: int = 3000,
) -> InfillCanvas | None:
    """The canvas for a cursor, or None when nothing is worth suggesting there (inside a comment)."""
    offset = offset_at(text, position)
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    before_line, after_line = text[line_start:offset], text[offset:line_end]
    if language_id in GRAMMARS and _in_comment(text, offset, language_id):
        return None
    before, after = text[:offset], text[offset:]
    kind = hole_kind(before_line, after_line, before, after)
    return InfillCanvas(
        language=language_id,
        prefix=text[_window_start(text, offset, prefix_chars) : offset],
        suffix=text[offset : _window_end(text, offset, suffix_chars)],
        position=position,
        hole_kind=kind,
        max_tokens=MAX_TOKENS[kind],
        indent=_indent_of(text[line_start:line_end]),
        line_suffix=after_line,
        before=before,
        after=after,
    )


def _cut_to_unit(canvas: InfillCanvas, candidate: str) -> str:
    """Truncate a fill to the hole's syntactic unit."""
    if canvas.hole_kind != "block":
        return candidate.split("\n", 1)[0]
    lines = candidate.split("\n")
    before_line = canvas.before.rsplit("\n", 1)[-1]
    if before_line.strip():  # the cursor ends a header line: the body is indented below it
        scope = len(canvas.indent) + 1
        kept = [lines[0]]
        rest = lines[1:]
    else:  # the cursor sits on an empty line of the body: its column is the scope
        scope = len(before_line)
        kept, rest = [lines[0]], lines[1:]
    for line in rest:
        if line.strip() and len(_indent_of(line)) < scope and canvas.language in INDENTED:
            break
        kept.append(line)
    # Braced languages: stop at the line that closes the enclosing block (the suffix already has it).
    if canvas.language not in INDENTED:
        depth, cut = 0, len(kept)
        for i, line in enumerate(kept):
            depth += line.count("{") - line.count("}")
            if depth < 0:
                cut = i
                break
        kept = kept[:cut]
    return "\n".join(kept)


def _bracket_balance(text: str) -> int:
    """Openers minus closers (string contents are not told apart: good enough for a short fill)."""
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


def _drop_suffix_overlap(fill: str, canvas: InfillCanvas) -> str:
    """Drop the end of a fill that repeats what already follows the cursor (Tabby's filter)."""
    rest = canvas.line_suffix.strip()
    for k in range(len(rest), 0, -1):
        # The whole rest of the line repeated, or a closer the line already has (an auto-closed ")").
        if fill.rstrip().endswith(rest[:k]) and (k == len(rest) or _bracket_balance(fill) < 0):
            fill = fill.rstrip()[:-k]
            break
    next_lines = [line.strip() for line in canvas.after.split("\n")[1:] if line.strip()][:3]
    lines = fill.split("\n")
    while len(lines) > 1 and next_lines and lines[-1].strip() == next_lines[0]:
        # A closing line that closes the fill's own block is not a repeat of the suffix.
        if _bracket_balance("\n".join(lines)) >= 0 and _bracket_balance(lines[-1]) < 0:
            break
        lines.pop()
    return "\n".join(lines)


def _brackets_close(fill: str, canvas: InfillCanvas) -> bool:
    """A fill may leave brackets open only if the text after it on the line closes them."""
    return _bracket_balance(fill) <= max(0, -_bracket_balance(canvas.line_suffix))


def postprocess_infill(canvas: InfillCanvas, candidate: str) -> InfillResult | None:
    """Splice a model fill into the document and keep it only if it is worth showing.

    Truncates to the hole's unit, drops text repeating the suffix, strips trailing whitespace, and
    rejects fills that make the file parse worse — after trying to drop trailing lines (SAFIM).
    """
    fill = candidate.replace("\r\n", "\n")
    if canvas.hole_kind == "block" and not canvas.before.rsplit("\n", 1)[-1].strip():
        fill = fill.lstrip("\n")
    fill = _drop_suffix_overlap(_cut_to_unit(canvas, fill), canvas).rstrip()
    lines = fill.split("\n")
    while lines and "".join(lines).strip():
        attempt = "\n".join(lines).rstrip()
        if _brackets_close(attempt, canvas) and parses_no_worse(
            canvas.before + canvas.after, canvas.before + attempt + canvas.after, canvas.language
        ):
            return InfillResult(
                insert_text=attempt, replace_end_character=canvas.position.character
            )
        lines.pop()
    return None
