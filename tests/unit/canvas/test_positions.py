"""Position conversion: UTF-16 / UTF-8 / UTF-32 columns over non-ASCII text, CRLF, clamping and errors."""

from __future__ import annotations

import random

import pytest

from diffgem_lsp import canvas as C
from diffgem_lsp.canvas.positions import offset_of_byte

# é is 1 UTF-16 unit / 2 UTF-8 bytes; 中 is 1 / 3; 😀 (U+1F600) is a surrogate pair: 2 / 4.
TEXT = "# é\nname = '中文'\nx = '😀😀' + y\n"


@pytest.mark.parametrize(
    "needle,line,utf16,utf8,utf32",
    [
        ("é", 0, 2, 2, 2),
        ("'中文'", 1, 7, 7, 7),
        ("文'", 1, 9, 11, 9),
        ("'\n", 1, 10, 14, 10),
        ("😀😀'", 2, 5, 5, 5),
        ("😀'", 2, 7, 9, 6),
        ("' + y", 2, 9, 13, 7),
        ("y\n", 2, 13, 17, 11),
    ],
)
def test_columns_in_each_encoding(needle, line, utf16, utf8, utf32):
    offset = TEXT.index(needle)
    assert C.position_at(TEXT, offset) == C.Position(line, utf16)
    assert C.position_at(TEXT, offset, "utf-8") == C.Position(line, utf8)
    assert C.position_at(TEXT, offset, "utf-32") == C.Position(line, utf32)
    for encoding, column in (("utf-16", utf16), ("utf-8", utf8), ("utf-32", utf32)):
        assert C.offset_at(TEXT, C.Position(line, column), encoding) == offset
    assert C.to_utf16_position(TEXT, C.Position(line, utf8), "utf-8") == C.Position(line, utf16)
    assert C.from_utf16_position(TEXT, C.Position(line, utf16), "utf-8") == C.Position(line, utf8)


def test_byte_offsets_are_utf8_for_tree_sitter():
    offset = TEXT.index("+")
    data = TEXT.encode("utf-8")
    assert C.byte_offset(TEXT, offset) == data.index(b"+")
    assert offset_of_byte(data, data.index(b"+")) == offset
    # A byte inside a multi-byte character rounds down to the character's start.
    assert offset_of_byte(data, data.index("😀".encode()) + 2) == TEXT.index("😀")


def test_lsprotocol_encoding_kinds_and_unknown_kinds():
    class Kind:  # stands in for lsprotocol's PositionEncodingKind enum (value "utf-8")
        value = "utf-8"

    assert C.normalize_encoding(Kind()) == "utf-8"
    assert C.normalize_encoding(None) == "utf-16"
    assert C.normalize_encoding("UTF-32") == "utf-32"
    assert C.normalize_encoding("latin-1") == "utf-16"  # the LSP default, never a crash


def test_character_past_line_end_is_clamped():
    assert C.offset_at("one\ntwo", C.Position(0, 99)) == 3
    assert C.offset_at("one\ntwo", C.Position(1, 99)) == 7
    assert C.offset_at("中文\n", C.Position(0, 99), "utf-8") == 2


def test_line_past_the_end_and_negative_numbers_are_errors():
    with pytest.raises(C.PositionError, match="past the end of the document \\(2 lines\\)"):
        C.offset_at("one\ntwo", C.Position(2, 0))
    with pytest.raises(C.PositionError):
        C.offset_at("one", C.Position(-1, 0))
    with pytest.raises(C.PositionError):
        C.offset_at("one", C.Position(0, -1))
    assert issubclass(C.PositionError, ValueError)
    # A document ending in a newline has an empty last line: its start is a valid position.
    assert C.offset_at("one\n", C.Position(1, 0)) == 4


def test_column_inside_a_surrogate_pair_rounds_down():
    text = "a😀b"
    assert C.offset_at(text, C.Position(0, 2)) == 1  # between the two halves of 😀
    assert C.offset_at(text, C.Position(0, 3)) == 2


def test_crlf_keeps_columns_off_the_carriage_return():
    text = "ab\r\ncd\r\n"
    assert C.line_bounds(text, 0) == (0, 2)
    assert C.offset_at(text, C.Position(0, 99)) == 2  # clamped before "\r", not after it
    assert C.position_at(text, 3) == C.Position(0, 2)  # between "\r" and "\n": before the "\r"
    assert C.position_at(text, 4) == C.Position(1, 0)
    assert C.offset_at(text, C.Position(2, 0)) == len(text)


def test_round_trip_on_random_text():
    rng = random.Random(0)
    alphabet = ["a", " ", "\n", "é", "中", "😀", "\r\n", "\t", "𝔘"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        for offset in range(len(text) + 1):
            if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
                continue  # between "\r" and "\n" is not a position
            for encoding in ("utf-16", "utf-8", "utf-32"):
                pos = C.position_at(text, offset, encoding)
                assert C.offset_at(text, pos, encoding) == offset, (text, offset, encoding)
