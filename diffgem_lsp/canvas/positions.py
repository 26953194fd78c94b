"""Position conversion, in one place: LSP positions (UTF-16 or UTF-8 code units) <-> str offsets <-> bytes.

Pure functions over document text. Lines are split on "\\n" (a "\\r" before it counts as line content).
"""

from __future__ import annotations

from dataclasses import dataclass


class PositionError(ValueError):
    """A position outside the document (a line past the last one)."""


@dataclass(frozen=True, order=True)
class Position:
    line: int
    character: int  # code units of the encoding in use (UTF-16 unless said otherwise)


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    return len(text)  # utf-32: one unit per code point


def _line_bounds(text: str, line: int) -> tuple[int, int]:
    if line < 0:
        raise PositionError(f"line {line} is negative")
    start = 0
    for _ in range(line):
        newline = text.find("\n", start)
        if newline < 0:
            raise PositionError(
                f"line {line} is past the end of the document ({text.count(chr(10)) + 1} lines)"
            )
        start = newline + 1
    end = text.find("\n", start)
    return start, len(text) if end < 0 else end


def offset_at(text: str, pos: Position, encoding: str = "utf-16") -> int:
    """The str index of a position. A character past the line's end is clamped to it (LSP 3.17 §Position)."""
    if pos.character < 0:
        raise PositionError(f"character {pos.character} is negative")
    start, end = _line_bounds(text, pos.line)
    line = text[start:end]
    if encoding == "utf-32":
        return start + min(pos.character, len(line))
    units = 0
    for i, ch in enumerate(line):
        if units >= pos.character:
            return start + i
        units += _units(ch, encoding)
    return end


def position_at(text: str, offset: int, encoding: str = "utf-16") -> Position:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(line, _units(text[line_start:offset], encoding))


def convert(text: str, pos: Position, source: str, target: str) -> Position:
    """Re-express a position in another encoding (validating and clamping it on the way)."""
    return position_at(text, offset_at(text, pos, source), target)


def to_utf16_position(text: str, pos: Position, encoding: object = "utf-16") -> Position:
    return convert(text, pos, _norm(encoding), "utf-16")


def from_utf16_position(text: str, pos: Position, encoding: object = "utf-16") -> Position:
    return convert(text, pos, "utf-16", _norm(encoding))


def byte_offset(text: str, offset: int) -> int:
    """UTF-8 byte offset of a str index (tree-sitter's unit)."""
    return len(text[:offset].encode("utf-8"))


def _norm(encoding: object) -> str:
    """Accept lsprotocol's PositionEncodingKind as well as plain strings (None: the LSP default)."""
    if encoding is None:
        return "utf-16"
    value = getattr(encoding, "value", encoding)
    return str(value).lower()
