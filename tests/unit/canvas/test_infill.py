"""Infill canvases and post-processing: the filters one at a time, windows, fallbacks, odd input."""

from __future__ import annotations

import time

import pytest

from diffgem_lsp import canvas as C

from .test_golden import HOLE, apply_infill


def canvas_at(marked: str, language: str = "python", **kwargs) -> tuple[str, C.InfillCanvas | None]:
    text = marked.replace(HOLE, "")
    return text, C.build_infill_canvas(
        text, language, C.position_at(text, marked.index(HOLE)), **kwargs
    )


def shown(marked: str, fill: str, language: str = "python") -> str | None:
    """The document after accepting `fill`, or None if it is not shown."""
    text, canvas = canvas_at(marked, language)
    assert canvas is not None
    result = C.postprocess_infill(canvas, fill)
    return None if result is None else apply_infill(text, canvas, result)


def test_fill_repeating_the_rest_of_the_line_is_trimmed():
    assert shown("x = max(⟨⟩, b)\n", "a, b)") == "x = max(a, b)\n"
    _, canvas = canvas_at("x = max(⟨⟩, b)\n")
    assert canvas is not None
    result = C.postprocess_infill(canvas, "a, b)")
    assert result == C.InfillResult(insert_text="a", replace_end_character=8)


def test_fill_typing_over_an_autoclosed_bracket_replaces_it_on_the_same_line():
    text, canvas = canvas_at('print(⟨⟩)\nz = "😀"\n')
    assert canvas is not None
    result = C.postprocess_infill(canvas, "x) or y")
    assert result == C.InfillResult(insert_text="x) or y", replace_end_character=7)
    assert apply_infill(text, canvas, result) == 'print(x) or y\nz = "😀"\n'


def test_replacement_columns_are_utf16():
    # The emoji before the cursor is two UTF-16 code units: the cursor is at column 8, not 7.
    text, canvas = canvas_at('f("😀", ⟨⟩)\n')
    assert canvas is not None and canvas.position.character == 8
    result = C.postprocess_infill(canvas, "1) + 2")
    assert result == C.InfillResult("1) + 2", 9)
    assert apply_infill(text, canvas, result) == 'f("😀", 1) + 2\n'


def test_multi_line_fill_stops_where_it_repeats_the_next_line():
    marked = "def f(xs):\n    total = 0\n    ⟨⟩\n\n    return total\n"
    _, canvas = canvas_at(marked)
    assert canvas is not None and (canvas.hole_kind, canvas.scope) == ("block", 4)
    assert shown(marked, "for x in xs:") is None  # a header with no body: Python rejects it
    assert shown(marked, "for x in xs:\n        total += x\n    return total") == (
        "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n\n    return total\n"
    )
    marked = "def f(xs):\n    ⟨⟩\n\nprint(1)\n"
    fill = "total = 0\n    for x in xs:\n        total += x\n    return total\nprint(1)"
    assert shown(marked, fill) == (
        "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n\n"
        "print(1)\n"
    )


def test_a_closing_line_of_the_fills_own_block_is_kept():
    marked = "function f(xs) {\n  ⟨⟩\n}\n"
    fill = "if (xs) {\n    return 1;\n}"
    # The fill's "}" is dedented, but it closes the fill's own "{": the bracket filter keeps the
    # block balanced by dropping the whole unfinished "if", never by leaving it open.
    assert shown(marked, fill, "javascript") is None
    assert shown(marked, "if (xs) {\n    return 1;\n  }\n}", "javascript") == (
        "function f(xs) {\n  if (xs) {\n    return 1;\n  }\n}\n"
    )


def test_block_fill_is_cut_at_the_first_dedent():
    marked = "class A:\n    def f(self):⟨⟩\n"
    fill = "\n        return 1\n    def g(self):\n        return 2\nx = A()"
    assert shown(marked, fill) == "class A:\n    def f(self):\n        return 1\n"


def test_fill_that_parses_worse_is_cut_back_line_by_line_then_rejected():
    marked = "def f(x):⟨⟩\n"
    # The last line is broken: SAFIM drops trailing lines until the file parses no worse.
    assert shown(marked, "\n    y = x + 1\n    return (y") == "def f(x):\n    y = x + 1\n"
    assert shown(marked, "\n    return )") is None
    assert shown("x = ⟨⟩\n", "1 +* 2") is None


def test_empty_and_whitespace_fills_are_rejected():
    _, canvas = canvas_at("x = ⟨⟩\n")
    assert canvas is not None
    for fill in ("", "   ", "\n\n", "\n  \n"):
        assert C.postprocess_infill(canvas, fill) is None


def test_trailing_whitespace_is_stripped_and_crlf_kept():
    assert shown("x = ⟨⟩\n", "1   \n") == "x = 1\n"
    assert shown("def f():⟨⟩\r\ny = 2\r\n", "\r\n    return 1  \r\ny = 2") == (
        "def f():\r\n    return 1\r\ny = 2\r\n"
    )


@pytest.mark.parametrize(
    "marked,language,expected",
    [
        ("def f():⟨⟩\n", "python", "block"),
        ("if x:⟨⟩\n", "python", "block"),
        ("try:⟨⟩\n", "python", "block"),
        ("d = {'a':⟨⟩\n", "python", "line"),
        ("xs[1:⟨⟩\n", "python", "line"),
        ("x = 1⟨⟩\n", "python", "line"),
        ("print(⟨⟩)\n", "python", "expression"),
        ("for x in xs:\n    ⟨⟩\n", "python", "block"),
        ("for x in xs:\n    a = 1\n    ⟨⟩\n    b = 2\n", "python", "block"),
        ("fn main() {⟨⟩\n}\n", "rust", "block"),
        ("func f() {⟨⟩\n}\n", "go", "block"),
        ("const x = [⟨⟩\n", "typescript", "block"),
        ("let y = 2⟨⟩\n", "javascript", "line"),
        ("if (a) {⟨⟩\n", "javascriptreact", "block"),
        ("if x:⟨⟩\n", "plaintext", "line"),
        ("int main() {⟨⟩\n", "c", "line"),
        ("if x {⟨⟩}\n", "go", "block"),
        ("foo(⟨⟩)\n", "go", "expression"),
        ('s = f"{⟨⟩}"\n', "python", "expression"),
        ("s = `${⟨⟩}`;\n", "javascript", "expression"),
    ],
)
def test_hole_kinds(marked, language, expected):
    _, canvas = canvas_at(marked, language)
    assert canvas is not None
    assert (canvas.hole_kind, canvas.max_tokens, canvas.stop) == (
        expected,
        C.MAX_TOKENS[expected],
        C.STOP_RULES[expected],
    )


def test_no_canvas_in_comments_or_mid_word_but_in_strings():
    assert canvas_at("# note ⟨⟩\nx = 1\n")[1] is None
    assert canvas_at("/** doc ⟨⟩ */\n", "typescript")[1] is None
    assert canvas_at("x = 1  ⟨⟩# note\n")[1] is not None  # before the comment starts
    assert canvas_at("pri⟨⟩nt(1)\n")[1] is None
    assert canvas_at('s = "ab⟨⟩"\n')[1] is not None
    assert canvas_at("x = 1 + ⟨⟩y\n")[1] is not None  # a word after, but not before


def test_any_other_language_gets_the_line_fallback():
    for language in ("plaintext", "c", "", "haskell"):
        text, canvas = canvas_at("a {\n  b = ⟨⟩\n}\n", language)
        assert canvas is not None and canvas.hole_kind == "line" and canvas.base_errors == 0
        result = C.postprocess_infill(canvas, "(unbalanced\nsecond line")
        assert result is None  # the bracket filter still applies
        result = C.postprocess_infill(canvas, "42\nsecond line")
        assert result is not None and apply_infill(text, canvas, result) == "a {\n  b = 42\n}\n"


def test_language_aliases_use_the_grammar():
    assert C.grammar_of("tsx") == C.grammar_of("typescriptreact") == "tsx"
    assert C.grammar_of("JS") == C.grammar_of("jsx") == "javascript"
    assert C.grammar_of("golang") == "go" and C.grammar_of("cobol") is None


def test_windows_start_and_end_at_line_boundaries_and_stay_put_while_typing():
    lines = [f"x{i} = {i}" for i in range(3000)]
    text = "\n".join(lines) + "\n"
    offset = text.index("\nx1501 = ")  # the end of line 1500
    pos = C.position_at(text, offset)
    canvas = C.build_infill_canvas(text, "python", pos, prefix_chars=6000, suffix_chars=3000)
    assert canvas is not None
    assert text[:offset].endswith(canvas.prefix) and len(canvas.prefix) <= 6000 + 2048
    assert text[offset - len(canvas.prefix) - 1] == "\n"
    assert text[offset:].startswith(canvas.suffix) and canvas.suffix.endswith("\n")
    assert len(canvas.suffix) <= 3000
    # Typing a few characters keeps the prefix window's start (the prompt cache stays valid).
    typed = text[:offset] + " + x" + text[offset:]
    later = C.build_infill_canvas(typed, "python", C.Position(pos.line, pos.character + 4))
    assert later is not None
    assert later.prefix == canvas.prefix + " + x"


def test_past_the_end_positions():
    with pytest.raises(C.PositionError):
        C.build_infill_canvas("x = 1\n", "python", C.Position(5, 0))
    canvas = C.build_infill_canvas("x = 1\n", "python", C.Position(0, 40))
    assert canvas is not None and canvas.position == C.Position(0, 5)  # clamped to the line end


def test_whitespace_only_and_empty_documents():
    for text in ("", "\n\n\n", "   "):
        canvas = C.build_infill_canvas(text, "python", C.Position(0, 0))
        assert canvas is not None and canvas.hole_kind in {"line", "block"}


def test_large_file_stays_fast():
    """A 1 MB file: canvas and post-processing parse it a handful of times (tree-sitter is fast)."""
    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30_000))
    text = body + "def g(x):\n    return \n"
    pos = C.Position(text.count("\n") - 1, 11)
    start = time.perf_counter()
    canvas = C.build_infill_canvas(text, "python", pos)
    assert canvas is not None
    result = C.postprocess_infill(canvas, "x * 2\nprint(1)")
    elapsed = time.perf_counter() - start
    assert result is not None and result.insert_text == "x * 2"
    assert elapsed < 5, f"{elapsed:.2f}s"


def test_one_huge_line_still_gets_a_prefix_window():
    text = "x = [" + "1, " * 5000 + "\n"
    canvas = C.build_infill_canvas(text, "javascript", C.Position(0, len(text) - 1))
    assert canvas is not None
    assert 6000 - 2048 <= len(canvas.prefix) <= 6000 + 2048
    assert text[: len(text) - 1].endswith(canvas.prefix)


def test_an_argument_spread_over_lines_inside_a_call():
    # The suffix's ")" closes `foo(`; the fill's own "bar(" must be closed by the fill.
    marked = "x = foo(⟨⟩)\ny = 2\n"
    assert shown(marked, "bar(\n    1)") == "x = foo(bar(\n    1))\ny = 2\n"
    assert shown(marked, "bar(\ny = 2") is None


def test_a_block_the_editor_did_not_close_is_closed_by_the_fill():
    fill = "\n  return 1;\n}\nfoo();"
    assert shown("function f() {⟨⟩\n", fill, "javascript") == "function f() {\n  return 1;\n}\n"
    # With the closer already there, the fill's copy of it is dropped.
    assert shown("function f() {⟨⟩\n}\n", fill, "javascript") == "function f() {\n  return 1;\n}\n"
    assert shown("x = f(⟨⟩\n", "\n    1,\n)\ny = 2") == "x = f(\n    1,\n)\n"
