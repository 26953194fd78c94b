"""Repair canvases: syntax errors as diagnostics, the statement around each as an edit canvas, and the check.

Pure functions over document text (no LSP types, no model); positions are UTF-16 `Position`s. The
repair re-denoises the smallest enclosing statement or block from its current text (an edit canvas:
self-correction keeps what was right) and keeps a candidate only if the file then parses better.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from tree_sitter import Node, Tree

from .edit import EditCanvas, _reindented
from .languages import grammar_of, parse, parse_spliced
from .lines import bracket_balance, eol_of
from .positions import Position, line_bounds, offset_of_byte, position_at
from .syntax import BODY_NODES

# A region to repair is a few lines at most: a canvas rewrites it whole, and an ERROR node that
# swallowed half the file says nothing about where the mistake is.
MAX_REPAIR_LINES = 12
# Diagnostics: one per outermost ERROR/MISSING node, at most this many (a badly broken file would
# otherwise flood the editor), and an ERROR spanning lines is reported on its first line only.
MAX_DIAGNOSTICS = 20
# A repair is a small change: a candidate must keep this much of the region (difflib's ratio), or a
# model that answers one plausible line would "repair" a function by deleting it.
MIN_SIMILARITY = 0.6


@dataclass(frozen=True)
class SyntaxDiagnostic:
    start: Position
    end: Position
    message: str


@dataclass(frozen=True)
class SyntaxFault:
    start: int  # str offsets of the ERROR node, or where the MISSING token belongs (empty)
    end: int
    missing: str  # the MISSING token's type ("" for an ERROR node)
    text: str  # the ERROR node's text (first 40 characters)
    # Byte range of the node the repair region grows from: the ERROR node, or the node that lacks
    # the MISSING token (tree-sitter puts a MISSING `}` where it gave up, often lines after the cause).
    owner_bytes: tuple[int, int] = (0, 0)


def syntax_faults(text: str, language_id: str) -> list[SyntaxFault]:
    """The outermost ERROR and MISSING nodes, in document order ([] without a grammar)."""
    tree = parse(text, language_id)
    if tree is None or not tree.root_node.has_error:
        return []
    data = text.encode("utf-8", "surrogatepass")
    faults: list[SyntaxFault] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            start, end = offset_of_byte(data, node.start_byte), offset_of_byte(data, node.end_byte)
            missing = node.type if node.is_missing else ""
            owner = node.parent if node.is_missing and node.parent is not None else node
            faults.append(
                SyntaxFault(
                    start,
                    end,
                    missing,
                    text[start:end][:40],
                    (owner.start_byte, owner.end_byte),
                )
            )
            continue  # errors inside an error say nothing more
        if node.has_error:
            stack.extend(reversed(node.children))
    return faults


def syntax_diagnostics(text: str, language_id: str) -> list[SyntaxDiagnostic]:
    """Ranges and messages for the ERROR and MISSING nodes of a document (first MAX_DIAGNOSTICS)."""
    out = []
    for fault in syntax_faults(text, language_id)[:MAX_DIAGNOSTICS]:
        end = fault.end
        first_line_end = text.find("\n", fault.start)
        if fault.start < first_line_end < end:
            end = first_line_end  # an ERROR spanning lines: its first line says where it starts
        if fault.missing:
            message = f"syntax error: missing `{fault.missing}`"
        else:
            snippet = " ".join(text[fault.start : end].split())[:40]
            message = f"syntax error: unexpected `{snippet}`" if snippet else "syntax error"
        out.append(
            SyntaxDiagnostic(position_at(text, fault.start), position_at(text, end), message)
        )
    return out


def _statement_around(tree: Tree, start_byte: int, end_byte: int) -> Node | None:
    """The smallest statement or block around a byte range: climb from the smallest node covering
    it to one whose parent is a body (a statement of a block or of the file)."""
    node: Node | None = tree.root_node.descendant_for_byte_range(start_byte, end_byte)
    while node is not None and node.parent is not None:
        if node.parent.type in BODY_NODES or node.parent.parent is None:
            return node
        node = node.parent
    return node


def _repair_lines(text: str, language_id: str, fault: SyntaxFault) -> tuple[int, int] | None:
    """Str offsets of the whole lines to re-denoise for one fault, or None when they are too many."""
    tree = parse(text, language_id)
    if tree is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    node = _statement_around(tree, *fault.owner_bytes)
    start, end = fault.start, fault.end
    if node is not None and node.type != "ERROR" and node.parent is not None:
        start = min(start, offset_of_byte(data, node.start_byte))
        end = max(end, offset_of_byte(data, node.end_byte))
    first, last = text.count("\n", 0, start), text.count("\n", 0, max(start, end - 1))
    if last - first + 1 > MAX_REPAIR_LINES:
        # A huge node (a whole function): the fault's own lines, with one line of context each side.
        first = max(0, text.count("\n", 0, fault.start) - 1)
        last = text.count("\n", 0, max(fault.start, fault.end - 1)) + 1
        last = min(last, text.count("\n"))
        if last - first + 1 > MAX_REPAIR_LINES:
            return None
    return line_bounds(text, first)[0], line_bounds(text, last)[1]


def build_repair_canvases(
    text: str, language_id: str, position: Position | None = None
) -> list[EditCanvas]:
    """An edit canvas per syntax fault (the one at `position`'s line, when given): the smallest
    statement or block around the fault, whole lines. Faults sharing lines share a canvas."""
    if grammar_of(language_id) is None:
        return []
    spans: list[tuple[int, int]] = []
    for fault in syntax_faults(text, language_id):
        span = _repair_lines(text, language_id, fault)
        if span is None:
            continue
        if position is not None:
            line = position.line
            if not text.count("\n", 0, span[0]) <= line <= text.count("\n", 0, span[1]):
                continue
        if spans and span[0] <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], span[1]))
        else:
            spans.append(span)
    eol = eol_of(text)
    return [
        EditCanvas(
            language=language_id,
            prefix=text[:s],
            suffix=text[e:],
            original=text[s:e],
            start=position_at(text, s),
            end=position_at(text, e),
            eol=eol,
        )
        for s, e in spans
    ]


def _fault_count(tree: Tree | None) -> int:
    if tree is None:
        return 0
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        elif node.has_error:
            stack.extend(node.children)
    return count


def _faults_between(tree: Tree, low: int, high: int) -> bool:
    """Whether an ERROR/MISSING node overlaps bytes [low, high] (touching counts)."""
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_byte < low or node.start_byte > high:
            continue
        if node.is_error or node.is_missing:
            return True
        if node.has_error:
            stack.extend(node.children)
    return False


def check_repair(canvas: EditCanvas, candidate: str) -> str | None:
    """The repaired region if `candidate` makes the file better: no syntax fault left in or at the
    region, fewer faults in the file than before, a change from the current text that keeps most of
    it (MIN_SIMILARITY). Else None.

    Indentation the model dropped is restored as for any rewrite (edit._reindented).
    """
    new = candidate.replace("\r\n", "\n").strip("\n").rstrip()
    if not new.strip():
        return None
    new = "\n".join(line.rstrip() for line in new.split("\n"))
    document = canvas.prefix + canvas.original + canvas.suffix
    start, end = len(canvas.prefix), len(canvas.prefix) + len(canvas.original)
    before = _fault_count(parse(document, canvas.language))
    for option in _reindented(canvas.original.replace(canvas.eol, "\n"), new):
        option = option.replace("\n", canvas.eol)
        if option == canvas.original:
            continue
        if difflib.SequenceMatcher(a=canvas.original, b=option).ratio() < MIN_SIMILARITY:
            continue
        tree = parse_spliced(document, canvas.language, start, end, option)
        if tree is None:
            continue
        low = len(document[:start].encode("utf-8", "surrogatepass"))
        high = low + len(option.encode("utf-8", "surrogatepass"))
        if _fault_count(tree) < before and not _faults_between(tree, low, high):
            return option
    return None


_TOKEN = re.compile(r"\w+|[^\w\s]")


def _line_cuts(text: str, at: int, low: int) -> list[int]:
    """The end of the code on `at`'s line, then the starts of its tokens from `at` on, latest first.
    A position at the start of a line (where tree-sitter puts a MISSING token) means the line above."""
    line_start = text.rfind("\n", 0, at) + 1
    if not text[line_start:at].strip():
        while at > low and text[at - 1].isspace():
            at -= 1
        line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line_end = len(text) if line_end < 0 else line_end
    code_end = line_start + len(text[line_start:line_end].rstrip())
    tokens = reversed(list(_TOKEN.finditer(text, line_start, code_end)))
    return [code_end] + [m.start() for m in tokens if m.start() > line_start and m.start() >= at]


def repair_cuts(text: str, canvas: EditCanvas, limit: int = 4) -> list[int]:
    """Offsets in the document where a rest-of-line infill may repair the canvas's region, likeliest
    first: for a fault within one line, that line's end, then its last tokens' starts from the fault
    on; for an ERROR node over several lines (tree-sitter-python often swallows a whole function),
    the ends of its lines, those with unbalanced brackets first.

    Why: an edit canvas starts from the broken text, and a small model mostly copies it back; a
    rest-of-line hole is what an infill model is best trained on ("return (a + b" + ")").
    """
    low, high = len(canvas.prefix), len(canvas.prefix) + len(canvas.original)
    cuts: list[int] = []
    for fault in syntax_faults(text, canvas.language):
        if not low <= fault.start <= high:
            continue
        if "\n" not in text[fault.start : fault.end].rstrip():
            points = _line_cuts(text, fault.start, low)
        else:
            ends = []
            offset = fault.start
            while offset <= min(fault.end, high):
                line_end = text.find("\n", offset)
                line_end = len(text) if line_end < 0 else line_end
                line = text[offset:line_end]
                if line.strip():
                    ends.append((bracket_balance(line) == 0, offset + len(line.rstrip())))
                offset = line_end + 1
            points = [end for _, end in sorted(ends, key=lambda e: e[0])]
        for point in points:
            if point not in cuts and len(cuts) < limit:
                cuts.append(point)
    return cuts


def splice_line_fill(text: str, canvas: EditCanvas, cut: int, fill: str) -> str:
    """The canvas's region with the rest of the cut's line replaced by the fill's first line."""
    low, high = len(canvas.prefix), len(canvas.prefix) + len(canvas.original)
    line_end = text.find("\n", cut)
    line_end = high if line_end < 0 or line_end > high else line_end
    if line_end > low and text[line_end - 1] == "\r":
        line_end -= 1
    first = fill.replace("\r\n", "\n").split("\n")[0].rstrip()
    return text[low:cut] + first + text[line_end:high]


def file_parses(text: str, language_id: str) -> bool:
    """Whether tree-sitter finds no ERROR or MISSING node (true without a grammar)."""
    return _fault_count(parse(text, language_id)) == 0
