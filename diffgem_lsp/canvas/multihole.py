"""Multi-hole canvases: a function's placeholders filled together, the code between them pinned.

Pure functions over document text (no LSP types, no model).

What a worker is asked for is `MultiHoleCanvas.request()`: `prefix` (the document before the first
hole), `suffix` (after the last), `segments` (the known text between holes, len(holes) - 1) and
`hole_tokens` (a budget per hole). The engine lays it out as one FIM prompt (prefix, suffix) and one
canvas of C positions: for each hole i, b_i free positions (starting as noise), then the tokens of
segments[i] pinned (model/sampler.py clamps pinned positions to one-hot logits every step), and free
EOS padding after the last hole; b_i = min(hole_tokens[i], (C - pinned - 1) // len(holes)). Hole i's
fill is its span decoded up to its first EOS (model/multihole.py). It answers `fills` (one string per
hole), or `fills` None when the segments do not fit the canvas: the holes are then filled one at a time,
each as a plain infill with the others' placeholders in place (bench/holes_eval.py measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

from .edit import TextEditData, minimal_edits
from .infill import CLOSING_LINE, MAX_TOKENS
from .languages import is_indented, no_worse, syntax_score
from .lines import bracket_balance, eol_of, first_negative_depth_line, indent_width, next_code_line
from .placeholders import Placeholder, find_placeholders
from .positions import Position, line_bounds, position_at

COMMENT_STARTS = ("#", "//", "/*", "*")


@dataclass(frozen=True)
class Hole:
    kind: str  # Placeholder.kind
    start: int  # str offsets into the document of the text a fill replaces
    end: int
    placeholder: str  # that text ("" after a TODO comment: the fill is inserted)
    indent: str  # indentation of the hole's statements
    lead: str  # what a fill starts with: "" or a line break + indent (after a TODO comment)


@dataclass(frozen=True)
class MultiHoleCanvas:
    language: str
    unit: str  # the enclosing unit's node type (function_definition, impl_item, …)
    text: str  # the whole document, placeholders in place
    start: Position  # the unit's whole lines, UTF-16
    end: Position
    unit_start: int  # the same, str offsets
    unit_end: int
    holes: tuple[Hole, ...]
    max_tokens: tuple[int, ...]  # per hole: the most a fill may take
    eol: str = "\n"

    @property
    def prefix(self) -> str:
        """The document before the first hole (the FIM prefix)."""
        return self.text[: self.holes[0].start] + self.holes[0].lead

    @property
    def suffix(self) -> str:
        """The document after the last hole (the FIM suffix)."""
        return self.text[self.holes[-1].end :]

    @property
    def segments(self) -> tuple[str, ...]:
        """The known text between consecutive holes, pinned in the canvas (len(holes) - 1 items).
        A hole's lead (the line break after a TODO comment) belongs to the segment before it."""
        return tuple(
            self.text[a.end : b.start] + b.lead
            for a, b in zip(self.holes, self.holes[1:], strict=False)
        )

    def request(self) -> dict:
        """The plain data a worker needs to denoise every hole of this canvas in one pass (the wire's
        GenerateParams fields of the same names)."""
        return {
            "prefix": self.prefix,
            "suffix": self.suffix,
            "segments": list(self.segments),
            "hole_tokens": list(self.max_tokens),
        }


@dataclass(frozen=True)
class MultiHoleResult:
    new_text: str  # the unit's new text (whole lines)
    edits: list[TextEditData]  # minimal edits turning the unit's old text into new_text
    filled: list[bool]  # per hole: whether its fill was kept (False: the placeholder stays)


def _hole(text: str, p: Placeholder, eol: str) -> Hole:
    line_start = text.rfind("\n", 0, p.start) + 1
    indent = text[line_start : line_start + p.column]
    lead = eol + indent if p.kind == "todo_comment" else ""
    return Hole(p.kind, p.start, p.end, text[p.start : p.end], indent, lead)


def build_multihole_canvases(
    text: str, language_id: str, start: Position | None = None, end: Position | None = None
) -> list[MultiHoleCanvas]:
    """One canvas per unit (innermost function, else class) with placeholders, for units that
    overlap lines start..end (all units without a range)."""
    eol = eol_of(text)
    placeholders = find_placeholders(text, language_id)
    units: dict[tuple[int, int], list[Placeholder]] = {}
    for p in placeholders:
        units.setdefault((p.unit_start, p.unit_end), []).append(p)
    canvases = []
    for (u_start, u_end), found in units.items():
        s = text.rfind("\n", 0, u_start) + 1
        e = line_bounds(text, text.count("\n", 0, u_end))[1]
        first, last = position_at(text, s), position_at(text, e)
        if (
            start is not None
            and end is not None
            and (last.line < start.line or first.line > end.line)
        ):
            continue
        holes = tuple(_hole(text, p, eol) for p in found)
        budget = tuple(MAX_TOKENS["block"] for _ in holes)
        canvases.append(
            MultiHoleCanvas(
                language=language_id,
                unit=found[0].unit,
                text=text,
                start=first,
                end=last,
                unit_start=s,
                unit_end=e,
                holes=holes,
                max_tokens=budget,
                eol=eol,
            )
        )
    return canvases


def _cut(canvas: MultiHoleCanvas, hole: Hole, lines: list[str], following: str | None) -> list[str]:
    """Keep a fill's lines up to where it leaves its body: a line indented less than the hole
    (indented languages), a line closing a bracket opened before the hole (braced ones), or a line
    repeating the code after the hole (Tabby's filters, as for infill block holes)."""
    width = indent_width(hole.indent)
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and indent_width(line) < width and is_indented(canvas.language):
            break
        if following is not None and line.strip() == following.strip():
            # A closing line that closes the fill's own bracket is the fill's, not a repeat.
            if not (set(line.strip()) <= CLOSING_LINE and bracket_balance("\n".join(kept)) > 0):
                break
        kept.append(line)
    if not is_indented(canvas.language):
        closing = first_negative_depth_line(kept)
        kept = kept if closing is None else kept[:closing]
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _normalize(canvas: MultiHoleCanvas, index: int, fill: str) -> list[str]:
    """A fill's lines, trailing whitespace gone, each line after the first at least at the hole's
    indentation (a model that dropped the indentation it was given gets it back)."""
    hole = canvas.holes[index]
    fill = fill.replace("\r\n", "\n").strip("\n")
    lines = [line.rstrip() for line in fill.split("\n")]
    code = [line.strip() for line in lines if line.strip()]
    if not code or all(line.startswith(COMMENT_STARTS) for line in code):
        return []  # a comment in place of `pass` leaves Python an empty body, and fills nothing
    lines[0] = lines[0].lstrip(" \t")
    rest = [line for line in lines[1:] if line.strip()]
    if rest and hole.indent and min(indent_width(line) for line in rest) == 0:
        lines = [lines[0]] + [hole.indent + line if line.strip() else line for line in lines[1:]]
    # The code after the hole: the rest of its line, else the next non-blank line.
    following = next_code_line("\n" + canvas.text[hole.end : hole.end + 4000])
    return _cut(canvas, hole, lines, following)


def _insert(canvas: MultiHoleCanvas, index: int, lines: list[str]) -> str:
    return canvas.holes[index].lead + canvas.eol.join(lines)


def _spliced(canvas: MultiHoleCanvas, inserts: dict[int, str]) -> tuple[str, int, int]:
    """The document with some holes replaced, and the str range spanning the replaced holes."""
    out, cursor, low, high = [], 0, len(canvas.text), 0
    for i, hole in enumerate(canvas.holes):
        if i not in inserts:
            continue
        out.append(canvas.text[cursor : hole.start])
        low = min(low, sum(len(x) for x in out))
        out.append(inserts[i])
        high = sum(len(x) for x in out)
        cursor = hole.end
    out.append(canvas.text[cursor:])
    return "".join(out), low, max(low, high)


def _score(canvas: MultiHoleCanvas, inserts: dict[int, str]) -> tuple[int, int]:
    document, low, high = _spliced(canvas, inserts)
    return syntax_score(document, canvas.language, (low, high))


def postprocess_multihole(canvas: MultiHoleCanvas, fills: list[str | None]) -> MultiHoleResult:
    """Splice each hole's fill and keep what parses no worse (SAFIM's check, per hole, then together).

    A fill is cut to its body and trailing lines are dropped until it parses no worse alone; then,
    if the fills together parse worse, the last kept ones are dropped until they do not. A hole whose
    fill is empty or rejected keeps its placeholder.
    """
    assert len(fills) == len(canvas.holes), (len(fills), len(canvas.holes))
    hole_range = (canvas.holes[0].start, canvas.holes[-1].end)
    bar = syntax_score(canvas.text, canvas.language, hole_range)
    inserts: dict[int, str] = {}
    for i, fill in enumerate(fills):
        lines = _normalize(canvas, i, fill or "")
        while lines and "".join(lines).strip():
            candidate = _insert(canvas, i, lines)
            if no_worse(bar, _score(canvas, {i: candidate})):
                inserts[i] = candidate
                break
            lines.pop()
    while inserts and not no_worse(bar, _score(canvas, inserts)):
        inserts.pop(max(inserts))
    document, _, _ = _spliced(canvas, inserts)
    old = canvas.text[canvas.unit_start : canvas.unit_end]
    grown = len(document) - len(canvas.text)
    new = document[canvas.unit_start : canvas.unit_end + grown]
    return MultiHoleResult(
        new_text=new,
        edits=minimal_edits(old, new, canvas.start) if inserts else [],
        filled=[i in inserts for i in range(len(canvas.holes))],
    )
