"""Line and indentation helpers shared by the infill and edit canvases.

Pure string functions (no tree-sitter): indentation, brackets outside string literals, line endings.
"""

from __future__ import annotations

import re

# String literals, roughly: enough to keep "(" inside quotes out of a bracket count.
_STRINGS = re.compile(r""""(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`""")
CLOSERS = ")]}"
_BRACKETS = re.compile(r"[()\[\]{}]")


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def indent_width(line: str, tab: int = 4) -> int:
    """Visual width of a line's indentation (a tab counts `tab` columns)."""
    return len(indent_of(line).expandtabs(tab))


def eol_of(text: str) -> str:
    """The document's line ending, judged by its first line break."""
    newline = text.find("\n")
    return "\r\n" if newline > 0 and text[newline - 1] == "\r" else "\n"


def without_strings(text: str) -> str:
    return _STRINGS.sub('""', text)


def bracket_balance(text: str) -> int:
    """Openers minus closers, outside string literals."""
    code = without_strings(text)
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in CLOSERS)


PAIRS = {"(": ")", "[": "]", "{": "}"}


def unclosed_openers(text: str) -> list[str]:
    """The brackets `text` opens and leaves open, innermost last (outside string literals)."""
    stack: list[str] = []
    for ch in without_strings(text):
        if ch in PAIRS:
            stack.append(ch)
        elif ch in CLOSERS and stack and PAIRS[stack[-1]] == ch:
            stack.pop()
    return stack


def unmatched_closers(text: str, limit: int = 4000, wanted: int | None = None) -> list[str]:
    """The closers at the start of `text` (its first `limit` characters) that close brackets opened
    before it, in the order they appear; the first `wanted` of them when that is given."""
    depth = 0
    found: list[str] = []
    if wanted == 0:
        return found
    # Only the brackets are visited (a C-speed search): a per-character loop over 4000 characters
    # was ~0.35 ms of each completion (a profile of the bench/backends.py holes).
    for ch in _BRACKETS.findall(without_strings(text[:limit])):
        if ch in PAIRS:
            depth += 1
        elif depth:
            depth -= 1
        else:
            found.append(ch)
            if len(found) == wanted:
                break
    return found


def brackets_closed_by(fill: str, suffix: str) -> bool:
    """Whether every bracket `fill` leaves open is closed, innermost first, by `suffix`."""
    openers = unclosed_openers(fill)
    closers = unmatched_closers(suffix, wanted=len(openers))
    return [PAIRS[o] for o in reversed(openers)] == closers


def first_negative_depth_line(lines: list[str], depth: int = 0) -> int | None:
    """Index of the first line at which the running bracket depth (starting at `depth`) drops below
    zero: the line that closes a bracket opened before these lines began."""
    for i, line in enumerate(lines):
        for ch in without_strings(line):
            if ch in "([{":
                depth += 1
            elif ch in CLOSERS:
                depth -= 1
                if depth < 0:
                    return i
    return None


def next_code_line(after: str) -> str | None:
    """The first non-blank line after the cursor's line (None if none). Scans, never splits: `after`
    may be the rest of a megabyte file."""
    start = after.find("\n")
    while start >= 0:
        end = after.find("\n", start + 1)
        line = after[start + 1 : end if end >= 0 else len(after)]
        if line.strip():
            return line.rstrip("\r")
        start = end
    return None


def is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"
