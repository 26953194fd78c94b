"""Infill canvases: the text around the cursor and the hole to fill, and post-processing of a fill.

Pure functions: document text + position in, plain dataclasses out (no LSP types, no model). The hole's
kind decides how much the model may write and where its answer is cut (llm-ls, Tabby and SAFIM do the same).
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Tree

from .languages import error_score, grammar_of, no_worse, parse, spliced_score
from .lines import (
    bracket_balance,
    brackets_closed_by,
    eol_of,
    first_negative_depth_line,
    indent_of,
    indent_width,
    is_word_char,
    next_code_line,
)
from .positions import Position, byte_offset, line_bounds, offset_at, units
from .syntax import block_header_row, in_comment, in_string

# Token budgets per hole kind: a single-line fill is short; a block may take several canvases.
MAX_TOKENS = {"expression": 24, "line": 48, "block": 128}
# Where a fill of each kind is cut: at the first newline, where the expression closes (a closer the
# line after the cursor already has), or at the first line that dedents below the cursor's scope.
STOP_RULES = {"expression": "close", "line": "newline", "block": "dedent"}
# The prefix window starts at a line boundary chosen in bands of this many characters, so that typing
# keeps the window's first character fixed and the worker's prompt cache stays valid.
WINDOW_BAND = 2048
# Text after the cursor that an editor typically auto-inserted (closing brackets and quotes, a
# semicolon): a fill may type over it, and the result then replaces it (a same-line LSP range).
AUTO_CLOSED = frozenset(")]}\"'`; \t")
CLOSERS_SET = frozenset(")]}")
CLOSING_LINE = frozenset(")]};, ")
# A line fill that opens a bracket may run on to the line that closes it, this many lines at most.
MAX_CONTINUATION_LINES = 12


@dataclass(frozen=True)
class InfillCanvas:
    language: str
    prefix: str  # window of text before the cursor sent to the model (starts at a line boundary)
    suffix: str  # window of text after the cursor sent to the model (ends at a line boundary)
    position: Position  # cursor, UTF-16
    hole_kind: str  # "expression" | "line" | "block"
    max_tokens: int
    indent: str  # indentation of the cursor's line
    line_suffix: str  # text after the cursor on its line (without the line break)
    before: str  # the whole document before the cursor (for post-processing)
    after: str  # the whole document after the cursor
    stop: str = "newline"  # STOP_RULES[hole_kind]
    # Block holes: lines of a fill indented less than this (columns, tabs as 4) end it. None: the
    # fill's own first line sets it (a cursor at column 0 of a blank line).
    scope: int | None = None
    eol: str = "\n"  # the document's line ending; fills are returned with it
    # The bar a fill must meet: ERROR/MISSING nodes in the document as it is, and bytes inside ERROR
    # nodes (languages.error_score).
    base_errors: int = 0
    base_damage: int = 0
    in_string: bool = False  # the cursor is inside a string literal: brackets there are just text

    @property
    def before_line(self) -> str:
        """Text before the cursor on its line."""
        return self.before[self.before.rfind("\n") + 1 :]


@dataclass(frozen=True)
class InfillResult:
    insert_text: str
    # UTF-16 column on the cursor's line where the replaced text ends: equal to the cursor's column
    # for a plain insertion, larger when the fill types over text after the cursor (an auto-closed ")").
    replace_end_character: int


def _window_start(text: str, offset: int, chars: int) -> int:
    if offset <= chars:
        return 0
    banded = ((offset - chars) // WINDOW_BAND) * WINDOW_BAND
    start = text.find("\n", banded, offset)
    return banded if start < 0 else start + 1  # one huge line (minified code): cut inside it


def _window_end(text: str, offset: int, chars: int) -> int:
    if len(text) - offset <= chars:
        return len(text)
    end = text.rfind("\n", offset, offset + chars)
    return offset + chars if end < 0 else end + 1


def _last_code_line_end(text: str, line_start: int) -> int | None:
    """Offset just after the last non-blank character before the cursor's line (None: none)."""
    end = line_start
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end or None


def _header_scope(text: str, tree: Tree, grammar: str, end: int) -> int | None:
    """If the code ending at str offset `end` opens a block, the minimum indentation of its body."""
    line_start = text.rfind("\n", 0, end) + 1
    row = block_header_row(tree, byte_offset(text, end), grammar, text[line_start:end])
    if row is None:
        return None
    start, stop = line_bounds(text, row)
    return indent_width(text[start:stop]) + 1


def hole_kind(
    text: str, offset: int, line_start: int, line_end: int, tree: Tree, grammar: str
) -> tuple[str, int | None]:
    """(kind, scope) for a cursor, read from the syntax tree around it.

    Text after the cursor on its line: the rest of an expression, except between an editor's
    auto-closed braces (`if x {⟨⟩}`): a block. The cursor ends a line that opens a block
    (`def f():`, `{`, `foo(`, `case 1:`) whose body is not there yet: the block. The cursor ends
    another non-blank line: the rest of that line. A blank line: a block (statements, cut where
    they dedent or start repeating the code below).
    """
    before_line, after_line = text[line_start:offset], text[offset:line_end]
    if after_line.strip():
        if (
            before_line.rstrip().endswith("{")
            and set(after_line.strip()) <= AUTO_CLOSED
            and not in_string(tree, byte_offset(text, offset))  # f"{⟨⟩}", `${⟨⟩}`
        ):
            scope = _header_scope(text, tree, grammar, line_start + len(before_line.rstrip()))
            if scope is not None:
                return "block", scope
        return "expression", None
    following = next_code_line(text[offset:])
    if before_line.strip():
        end = line_start + len(before_line.rstrip())
        scope = _header_scope(text, tree, grammar, end)
        if scope is None or (following is not None and indent_width(following) >= scope):
            return "line", None  # not a header, or its body is already there
        return "block", scope
    # A blank line: several statements may go there (an empty body, the end of a body, a gap in
    # one). The fill ends where it dedents below the cursor, or the body under the header above.
    column = indent_width(before_line)
    previous_end = _last_code_line_end(text, line_start)
    header = None if previous_end is None else _header_scope(text, tree, grammar, previous_end)
    return "block", max(column, header or 0) or None


def build_infill_canvas(
    text: str,
    language_id: str,
    position: Position,
    *,
    prefix_chars: int = 6000,
    suffix_chars: int = 3000,
) -> InfillCanvas | None:
    """The canvas for a cursor, or None when nothing is worth suggesting there (inside a comment, in
    the middle of a word). Raises PositionError for a line past the end of the document."""
    offset = offset_at(text, position)
    line_start, line_end = line_bounds(text, position.line)
    before_line, after_line = text[line_start:offset], text[offset:line_end]
    if before_line and after_line and is_word_char(before_line[-1]) and is_word_char(after_line[0]):
        return None  # mid-identifier: any fill would split a word
    grammar, tree = grammar_of(language_id), parse(text, language_id)
    byte = byte_offset(text, offset)
    if grammar is None or tree is None:
        kind, scope, string = "line", None, False  # no grammar: a plain rest-of-line hole
    else:
        if in_comment(tree, byte):
            return None
        kind, scope = hole_kind(text, offset, line_start, line_end, tree, grammar)
        string = in_string(tree, byte)
    errors, damage = error_score(tree, (byte, byte), grammar or "")
    return InfillCanvas(
        language=language_id,
        prefix=text[_window_start(text, offset, prefix_chars) : offset],
        suffix=text[offset : _window_end(text, offset, suffix_chars)],
        position=Position(position.line, units(before_line)),
        hole_kind=kind,
        max_tokens=MAX_TOKENS[kind],
        indent=indent_of(text[line_start:line_end]),
        line_suffix=after_line,
        before=text[:offset],
        after=text[offset:],
        stop=STOP_RULES[kind],
        scope=scope,
        eol=eol_of(text),
        base_errors=errors,
        base_damage=damage,
        in_string=string,
    )


def _cut_block(canvas: InfillCanvas, lines: list[str]) -> list[str]:
    """Keep a block fill's lines up to the first that dedents below the scope or closes a bracket
    opened before the hole (Tabby's indentation filter, plus brackets for braced languages)."""
    scope = canvas.scope
    if scope is None:
        scope = indent_width(canvas.before_line + lines[0])
    suffix_closes = canvas.after.lstrip()[:1] in CLOSERS_SET
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and indent_width(line) < scope:
            # The dedented line that closes the block (`}`, `)`) is the fill's to write when the
            # code after the hole does not already close it (no editor auto-closed it).
            if not suffix_closes and line.strip()[0] in CLOSERS_SET:
                kept.append(line)
            break
        kept.append(line)
    # A line closing a bracket opened before the hole ends the fill, when the code after the hole
    # closes that bracket itself (`}` of the enclosing body); otherwise the hole may well be the rest
    # of a multi-line call, whose ")" is the fill's to write. The first line is the rest of the
    # cursor's line: closing the header's own bracket there (`foo(` + `x)`) is fine.
    if not suffix_closes:
        return kept
    closing = first_negative_depth_line(kept[1:], max(0, bracket_balance(kept[0])))
    return kept if closing is None else kept[: closing + 1]


def _logical_line(canvas: InfillCanvas, lines: list[str]) -> list[str]:
    """A line or expression fill: its first line, continued while it leaves brackets open that the
    code after it does not close (an argument list spread over lines), up to a line that repeats
    the code after the hole."""
    taken = [lines[0]]
    following = next_code_line(canvas.after)
    for line in lines[1:MAX_CONTINUATION_LINES]:
        if canvas.in_string or brackets_closed_by(
            canvas.before_line + "\n".join(taken), canvas.after
        ):
            break
        if following is not None and line.strip() == following.strip():
            break
        taken.append(line)
    return taken


def _drop_repeated_suffix_lines(canvas: InfillCanvas, lines: list[str]) -> list[str]:
    """Cut a multi-line fill where it starts repeating the code after the hole (Tabby's filter)."""
    following = next_code_line(canvas.after)
    if following is None:
        return lines
    for i in range(1, len(lines)):
        if lines[i].strip() != following.strip():
            continue
        # A closing line (`}`, `);`) that closes the fill's own bracket is the fill's, not a repeat.
        if set(following.strip()) <= CLOSING_LINE and bracket_balance("\n".join(lines[:i])) > 0:
            continue
        return lines[:i]
    return lines


def _is_subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


def _replacements(fill: str, rest: str) -> list[int]:
    """How many characters of `rest` (the code after the cursor on its line) a fill may type over,
    in order of preference: all of it when the fill ends with it (the model repeated the suffix),
    none, or a prefix made of auto-closed characters that the fill already contains."""
    options = [len(rest)] if rest and fill.endswith(rest) else []
    options.append(0)
    auto_closed = 0  # the run of auto-closed characters `rest` starts with
    while auto_closed < len(rest) and rest[auto_closed] in AUTO_CLOSED:
        auto_closed += 1
    for k in range(auto_closed, 0, -1):
        if _is_subsequence(rest[:k].replace(" ", ""), fill):
            options.append(k)
    return list(dict.fromkeys(options))


def _splice(canvas: InfillCanvas, fill: str) -> InfillResult | None:
    """The best way to put `fill` at the cursor: fewest syntax errors, never more than without it."""
    rest = canvas.line_suffix.rstrip()
    bar = (canvas.base_errors, canvas.base_damage)
    best: tuple[tuple[int, int], int] | None = None  # (score, characters replaced)
    document, cursor = canvas.before + canvas.after, len(canvas.before)
    for k in _replacements(fill, rest):
        # A fill may leave brackets open only if the code after it closes them (tree-sitter often
        # accepts an unclosed bracket with a MISSING node that the count alone would not notice).
        # The brackets the cursor's line opened before the fill are closed after the fill's own.
        if not canvas.in_string and not brackets_closed_by(
            canvas.before_line + fill, canvas.after[k:]
        ):
            continue
        score = spliced_score(document, canvas.language, cursor, cursor + k, fill)
        if no_worse(bar, score) and (best is None or score < best[0]):
            best = (score, k)
    if best is None:
        return None
    replaced = rest[: best[1]]
    # Present the fill minimally: the characters it shares at its end with what it replaces need not
    # be replaced ("values)" over ")" is the insertion "values").
    while replaced and fill and fill[-1] == replaced[-1]:
        fill, replaced = fill[:-1], replaced[:-1]
    if not fill.strip():
        return None
    return InfillResult(
        insert_text=fill.replace("\n", canvas.eol),
        replace_end_character=canvas.position.character + units(replaced),
    )


def postprocess_infill(canvas: InfillCanvas, candidate: str) -> InfillResult | None:
    """Splice a model fill into the document and keep it only if it is worth showing.

    Truncates to the hole's unit, drops text repeating the suffix, strips trailing whitespace, and
    rejects fills that make the file parse worse — after trying to drop trailing lines (SAFIM).
    The result may replace auto-closed text after the cursor (`replace_end_character`), and a body
    typed between braces ends with a line break and the header's indentation.
    """
    fill = candidate.replace("\r\n", "\n")
    blank_line = not canvas.before_line.strip() and not canvas.line_suffix.strip()
    if blank_line:
        fill = fill.lstrip("\n")  # the cursor's line is empty: a leading newline only wastes it
    elif canvas.before_line.endswith(" ") and fill.startswith(" ") and fill[1:2] != " ":
        fill = fill[1:]  # "return ⟨⟩" + " x" would leave two spaces (more is alignment: kept)
    lines = [line.rstrip() for line in fill.split("\n")]
    if not "".join(lines).strip():
        return None
    if canvas.hole_kind == "block":
        lines = _drop_repeated_suffix_lines(canvas, _cut_block(canvas, lines))
    else:
        lines = _logical_line(canvas, lines)
    following = next_code_line(canvas.after)
    if blank_line and following is not None and "\n".join(lines).strip() == following.strip():
        return None  # the fill is just the next line again
    # A body typed between auto-closed braces (`{⟨⟩}`) ends on a line of its own, so that the closer
    # the editor inserted lands on the next line at the header's indentation.
    closing = (
        "\n" + canvas.indent if canvas.hole_kind == "block" and canvas.line_suffix.strip() else ""
    )
    while lines and "".join(lines).strip():
        body = "\n".join(lines).rstrip()
        result = _splice(canvas, body + closing if "\n" in body else body)
        if result is not None:
            return result
        lines.pop()
    return None
