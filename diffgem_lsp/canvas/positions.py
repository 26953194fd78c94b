"""Position conversion, in one place: LSP positions (UTF-16, UTF-8 or UTF-32 code units) <-> str offsets <-> bytes.

Pure functions over document text; every other module converts positions only through these.

Conventions (LSP 3.17 §Position, §PositionEncodingKind):
- Lines end at "\\n"; a "\\r" just before it belongs to the line terminator, never to the line's text,
  so a column can never land between "\\r" and "\\n". (A lone "\\r" as a line break is not supported.)
- A character past the end of its line is clamped to the line's end: the spec says clients may send it.
- A line past the last line, or a negative line or character, raises `PositionError` (a `ValueError`),
  which the server turns into an InvalidParams error. (A document ending in "\\n" has an empty last
  line, so the position just after all the text is in range.)
- A column that falls inside one character (half a surrogate pair, the middle of a UTF-8 sequence) is
  rounded down to that character's start, as vscode-languageserver-textdocument does.
"""

from __future__ import annotations

from dataclasses import dataclass

ENCODINGS = ("utf-16", "utf-8", "utf-32")


class PositionError(ValueError):
    """A position outside the document (a line past the last one, a negative number)."""


@dataclass(frozen=True, order=True)
class Position:
    line: int  # zero-based
    character: int  # zero-based code units of the encoding in use (UTF-16 unless said otherwise)


def units(text: str, encoding: str = "utf-16") -> int:
    """Length of `text` in code units of `encoding`."""
    if encoding == "utf-16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    raise ValueError(f"unknown position encoding {encoding!r} (expected one of {ENCODINGS})")


def line_bounds(text: str, line: int) -> tuple[int, int]:
    """str offsets [start, end) of a line's text, without its terminator ("\\n" or "\\r\\n")."""
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
    end = len(text) if end < 0 else end
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def offset_at(text: str, pos: Position, encoding: str = "utf-16") -> int:
    """The str index of a position; a character past the end of its line is clamped to the line end."""
    if pos.character < 0:
        raise PositionError(f"character {pos.character} is negative")
    start, end = line_bounds(text, pos.line)
    line = text[start:end]
    if encoding == "utf-32":
        return start + min(pos.character, len(line))
    # Encode the line, cut it at the column, decode what is left: C speed on megabyte lines.
    # "ignore" drops a character cut in half, which rounds a column inside it down to its start.
    codec, width = ("utf-16-le", 2) if encoding == "utf-16" else ("utf-8", 1)
    head = line.encode(codec, "surrogatepass")[: pos.character * width]
    return start + len(head.decode(codec, "ignore"))


def position_at(text: str, offset: int, encoding: str = "utf-16") -> Position:
    """The position of a str index (clamped to the document; an index on a "\\r\\n" goes before it)."""
    offset = max(0, min(offset, len(text)))
    if 0 < offset < len(text) and text[offset] == "\n" and text[offset - 1] == "\r":
        offset -= 1
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(line, units(text[line_start:offset], encoding))


def convert(text: str, pos: Position, source: str, target: str) -> Position:
    """Re-express a position in another encoding (validating and clamping it on the way)."""
    return position_at(text, offset_at(text, pos, source), target)


def normalize_encoding(encoding: object) -> str:
    """Accept lsprotocol's PositionEncodingKind as well as plain strings.

    None or an unknown kind mean UTF-16: the LSP default, and the only kind a server must support.
    """
    value = str(getattr(encoding, "value", encoding)).lower()
    return value if value in ENCODINGS else "utf-16"


def to_utf16_position(text: str, pos: Position, encoding: object = "utf-16") -> Position:
    """A client position in the negotiated encoding -> the UTF-16 position the canvases use."""
    return convert(text, pos, normalize_encoding(encoding), "utf-16")


def from_utf16_position(text: str, pos: Position, encoding: object = "utf-16") -> Position:
    """A canvas (UTF-16) position -> the client's negotiated encoding."""
    return convert(text, pos, "utf-16", normalize_encoding(encoding))


def byte_offset(text: str, offset: int) -> int:
    """UTF-8 byte offset of a str index (tree-sitter's unit)."""
    return units(text[:offset], "utf-8")


def offset_of_byte(data: bytes, byte: int) -> int:
    """str index of a UTF-8 byte offset into `data` (the document encoded), rounding down inside a
    multi-byte character."""
    return len(data[:byte].decode("utf-8", "ignore"))


def utf16_column(text: str, offset: int) -> int:
    """UTF-16 column of a str index on its line."""
    return position_at(text, offset).character
