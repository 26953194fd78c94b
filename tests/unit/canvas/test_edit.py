"""Edit canvases: selection expansion, post-processing of a rewrite, and minimal edits."""

from __future__ import annotations

import random

import pytest

from diffgem_lsp import canvas as C

from .test_golden import SEL, apply_edits


def edit_canvas(marked: str, language: str = "python") -> tuple[str, C.EditCanvas]:
    start, end = marked.index(SEL[0]), marked.index(SEL[1]) - 1
    text = marked.replace(SEL[0], "").replace(SEL[1], "")
    return text, C.build_edit_canvas(
        text, language, C.position_at(text, start), C.position_at(text, end)
    )


@pytest.mark.parametrize(
    "marked,language,original",
    [
        # Part of one statement: that statement's whole line.
        ("a = 1\nb = «2 + »3\nc = 4\n", "python", "b = 2 + 3"),
        # Two statements of a body: those two, not the whole function.
        (
            "def f():\n    x = «1\n    y» = 2\n    return x\n",
            "python",
            "    x = 1\n    y = 2",
        ),
        # Into a block from its header: the whole compound statement.
        (
            "if x:\n    «a = 1\nelse:\n    b» = 2\n",
            "python",
            "if x:\n    a = 1\nelse:\n    b = 2",
        ),
        # A selection ending at column 0 of the next line does not take that line.
        ("let a = 1;\n«let b = 2;\n»let c = 3;\n", "javascript", "let b = 2;"),
        # Across a function's closing brace into the next: both functions whole.
        (
            "fn a() {\n    «1\n}\nfn b() {\n    2»\n}\n",
            "rust",
            "fn a() {\n    1\n}\nfn b() {\n    2\n}",
        ),
        ("package m\n\nvar «x» = 1\n", "go", "var x = 1"),
        (
            "type A = { «a: number; b»: string };\n",
            "typescript",
            "type A = { a: number; b: string };",
        ),
    ],
)
def test_selection_expands_to_whole_nodes_and_lines(marked, language, original):
    text, canvas = edit_canvas(marked, language)
    assert canvas.original == original
    assert canvas.prefix + canvas.original + canvas.suffix == text
    assert C.offset_at(text, canvas.start) == len(canvas.prefix)
    assert C.offset_at(text, canvas.end) == len(canvas.prefix) + len(canvas.original)


def test_reversed_selection_and_crlf_and_unicode():
    text = "x = '😀'\r\ny = 2\r\nz = 3\r\n"
    canvas = C.build_edit_canvas(text, "python", C.Position(1, 3), C.Position(0, 2))
    assert canvas.original == "x = '😀'\r\ny = 2"
    assert canvas.start == C.Position(0, 0) and canvas.end == C.Position(1, 5)
    assert canvas.eol == "\r\n"
    new = C.postprocess_edit(canvas, "x = '😀😀'\ny = 2\n")
    assert new == "x = '😀😀'\r\ny = 2"
    edits = C.minimal_edits(canvas.original, new, canvas.start)
    # One emoji inserted after the first: the edit sits at UTF-16 column 7 (the emoji is 2 units).
    assert edits == [C.TextEditData(C.Position(0, 7), C.Position(0, 7), "😀")]
    assert apply_edits(text, edits) == "x = '😀😀'\r\ny = 2\r\nz = 3\r\n"


def test_broken_code_is_not_expanded_to_a_huge_error_node():
    text = "x = (\ny = «1»\nz = 2\n" + "w = 3\n" * 50
    _, canvas = edit_canvas(text)
    assert canvas.original.count("\n") <= 2


def test_positions_past_the_end_are_errors():
    with pytest.raises(C.PositionError):
        C.build_edit_canvas("a\n", "python", C.Position(0, 0), C.Position(9, 0))


@pytest.mark.parametrize(
    "model,expected",
    [
        # The whole rewrite came back dedented: the original indentation goes on every line.
        ("for x in xs:\n    print(x)", "    for x in xs:\n        print(x)"),
        # Only the first line lost its indentation (the rest is as in the original).
        ("for x in xs:\n        print(x)", "    for x in xs:\n        print(x)"),
        ("    for x in xs:\n        print(x)\n\n", "    for x in xs:\n        print(x)"),
        ("\n    for x in xs:   \n        print(x)", "    for x in xs:\n        print(x)"),
    ],
)
def test_rewrite_keeps_indentation(model, expected):
    _, canvas = edit_canvas("def f(xs):\n    «for i in range(len(xs)):\n        print(xs[i])»\n")
    assert C.postprocess_edit(canvas, model) == expected


@pytest.mark.parametrize(
    "model",
    ["", "   \n", "for x in xs:", "    for x in (xs:\n        print(x)", "    print(x))"],
)
def test_rewrite_that_parses_worse_or_is_empty_is_rejected(model):
    _, canvas = edit_canvas("def f(xs):\n    «for i in range(len(xs)):\n        print(xs[i])»\n")
    assert C.postprocess_edit(canvas, model) is None


def test_rewrite_in_a_language_without_grammar_is_kept():
    _, canvas = edit_canvas("  «some text»\nmore\n", "plaintext")
    assert C.postprocess_edit(canvas, "other (text") == "  other (text"


def test_minimal_edits_for_small_changes():
    old = "a = 1\nb = 2\nc = 3\n"
    start = C.Position(10, 4)
    assert C.minimal_edits(old, old, start) == []
    # One character on the first line: columns are offset by the start's column.
    assert C.minimal_edits(old, "a = 7\nb = 2\nc = 3\n", start) == [
        C.TextEditData(C.Position(10, 8), C.Position(10, 9), "7")
    ]
    # A line inserted and one deleted: two separate edits, both in original coordinates.
    edits = C.minimal_edits(old, "a = 1\nx = 0\nb = 2\n", C.Position(0, 0))
    assert edits == [
        C.TextEditData(C.Position(1, 0), C.Position(1, 0), "x = 0\n"),
        C.TextEditData(C.Position(2, 0), C.Position(3, 0), ""),
    ]
    assert apply_edits(old, edits) == "a = 1\nx = 0\nb = 2\n"


def test_minimal_edits_on_random_rewrites_reproduce_the_new_text():
    rng = random.Random(1)
    words = ["x", "y = 1", "    return z", "", "é中😀", "print(a, b)", "}"]
    for _ in range(300):
        old_lines = [rng.choice(words) for _ in range(rng.randint(0, 8))]
        new_lines = list(old_lines)
        for _ in range(rng.randint(0, 4)):
            op = rng.choice("ids")
            i = rng.randint(0, len(new_lines))
            if op == "i":
                new_lines.insert(i, rng.choice(words))
            elif new_lines and i < len(new_lines):
                if op == "d":
                    del new_lines[i]
                else:
                    new_lines[i] = new_lines[i] + rng.choice(["", "!", " é"])
        old, new = "\n".join(old_lines), "\n".join(new_lines)
        prefix = "header 😀\n  pre"
        document = prefix + old + "\ntail\n"
        start = C.position_at(document, len(prefix))
        edits = C.minimal_edits(old, new, start)
        assert apply_edits(document, edits) == prefix + new + "\ntail\n", (old, new)
        changed = sum(len(e.new_text) for e in edits)
        assert changed <= len(new)
        if old == new:
            assert edits == []


def test_rewrite_echoing_the_code_around_the_selection_is_trimmed():
    marked = "def f(xs):\n    total = 0\n    «for x in xs:\n        total += x»\n    return total\n"
    _, canvas = edit_canvas(marked)
    echoed = "    total = 0\n    for x in xs:\n        total += 2 * x\n    return total"
    assert C.postprocess_edit(canvas, echoed) == "    for x in xs:\n        total += 2 * x"
    # A rewrite that legitimately ends like the code after it keeps its lines.
    _, canvas = edit_canvas("a = 1\n«b = 2»\nb = 2\n")
    assert C.postprocess_edit(canvas, "b = 3\nb = 2") == "b = 3\nb = 2"
