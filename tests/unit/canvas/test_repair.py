"""Repair canvases: diagnostics for ERROR/MISSING nodes, the region re-denoised, and the acceptance check.

Golden files (golden/repair/*.json) show each broken input's diagnostics and repair regions, and for
each model candidate whether the check keeps it. Regenerate with `--update-golden` and review the diff.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from diffgem_lsp import canvas as C
from diffgem_lsp.canvas.repair import (
    build_repair_canvases,
    check_repair,
    file_parses,
    repair_cuts,
    splice_line_fill,
    syntax_diagnostics,
)

from .test_golden import lines

# (id, language, broken source, candidates for its first repair canvas)
CASES = [
    (
        "py_missing_colon",
        "python",
        "def f(xs):\n    total = 0\n    for x in xs\n        total += x\n    return total\n",
        [
            "    for x in xs:\n        total += x",
            "for x in xs:\n    total += x",  # dedented: the original indentation comes back
            "    for x in xs\n        total += x",  # unchanged
            "    pass",  # parses, but throws the code away
        ],
    ),
    (
        "py_unclosed_paren",
        "python",
        "def f(a):\n    return (a + 1\n\nprint(f(2))\n",
        [
            "def f(a):\n    return (a + 1)\n\nprint(f(2))",
            "def f(a):\n    return (a + 1\n\nprint(f(2)",
        ],
    ),
    (
        "js_dangling_operator",
        "javascript",
        "function f(a) {\n  const b = a +;\n  return b;\n}\n",
        ["  const b = a + 1;", "  const b = a +;", ""],
    ),
    (
        "go_unclosed_call",
        "go",
        "package main\n\nfunc f(a int) int {\n\tb := a * (2\n\treturn b\n}\n",
        ["\tb := a * (2)\n\treturn b"],
    ),
    (
        "rust_missing_semicolon",
        "rust",
        "fn f(a: i32) -> i32 {\n    let b = a + 1\n    b\n}\n",
        ["fn f(a: i32) -> i32 {\n    let b = a + 1;\n    b\n}", "let b = a + 1;"],
    ),
    (
        "ts_missing_brace",
        "typescript",
        "function g(x: number): number {\n  if (x > 0) {\n    return x;\n  return -x;\n}\n",
        ["function g(x: number): number {\n  if (x > 0) {\n    return x;\n  }\n  return -x;\n}"],
    ),
]


def run(language: str, text: str, candidates: list[str]) -> dict:
    canvases = build_repair_canvases(text, language)
    assert canvases, "the fixture must be broken"
    out = {
        "language": language,
        "input": lines(text),
        "diagnostics": [asdict(d) for d in syntax_diagnostics(text, language)],
        "regions": [
            {"start": asdict(c.start), "end": asdict(c.end), "original": lines(c.original)}
            for c in canvases
        ],
        "candidates": [],
    }
    canvas = canvases[0]
    for candidate in candidates:
        kept = check_repair(canvas, candidate)
        document = None if kept is None else canvas.prefix + kept + canvas.suffix
        if document is not None:
            assert file_parses(document, language)
        out["candidates"].append(
            {"model": candidate, "document": None if document is None else lines(document)}
        )
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_repair_golden(case, golden):
    name, language, text, candidates = case
    golden(f"repair/{name}", run(language, text, candidates))


def test_a_document_that_parses_has_nothing_to_repair():
    text = "def f(a):\n    return a\n"
    assert syntax_diagnostics(text, "python") == []
    assert build_repair_canvases(text, "python") == []
    assert build_repair_canvases("x = (", "plaintext") == []


def test_position_picks_the_fault_on_its_line():
    text = "a = (1\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nb = [2\n"
    all_regions = build_repair_canvases(text, "python")
    at_b = build_repair_canvases(text, "python", C.Position(18, 2))
    assert len(at_b) <= len(all_regions) and all(c.end.line >= 18 for c in at_b)
    assert build_repair_canvases(text, "python", C.Position(9, 0)) == [] or all(
        c.start.line <= 9 <= c.end.line
        for c in build_repair_canvases(text, "python", C.Position(9, 0))
    )


def test_diagnostics_are_capped_and_on_one_line():
    text = "".join(f"x{i} = (\n" for i in range(50))
    diagnostics = syntax_diagnostics(text, "python")
    assert 1 <= len(diagnostics) <= 20
    assert all(d.start.line == d.end.line for d in diagnostics)


def test_a_repair_leaving_another_fault_elsewhere_still_counts_if_fewer():
    text = "def f():\n    x = (1\n    return x\n\n\n\n\n\n\n\n\n\n\n\n\n\n\ny = ]\n"
    canvases = build_repair_canvases(text, "python", C.Position(1, 4))
    assert canvases
    kept = check_repair(canvases[0], canvases[0].original.replace("(1", "(1)"))
    assert kept is not None and "(1)" in kept


def test_repair_cuts_try_the_faulty_lines_end_then_its_last_tokens():
    text = "total = sum(values))\n"
    (canvas,) = build_repair_canvases(text, "python")
    cuts = repair_cuts(text, canvas)
    assert [text[:c] for c in cuts][:2] == ["total = sum(values))", "total = sum(values)"]
    assert (
        check_repair(canvas, splice_line_fill(text, canvas, cuts[1], "")) == "total = sum(values)"
    )


def test_a_missing_token_at_a_line_start_cuts_the_line_above():
    text = "def f(x):\n    if x > 0\n        return x\n    return -x\n"
    (canvas,) = build_repair_canvases(text, "python")
    cut = repair_cuts(text, canvas)[0]
    assert text[:cut].endswith("if x > 0")
    fixed = check_repair(canvas, splice_line_fill(text, canvas, cut, ":\nignored second line"))
    assert fixed is not None and "if x > 0:\n        return x" in fixed


def test_unbalanced_lines_of_a_large_error_come_first():
    text = "def f(a, b):\n    return (a + b\n\n\nprint(f(1, 2))\n"
    (canvas,) = build_repair_canvases(text, "python")
    assert text[: repair_cuts(text, canvas)[0]].endswith("return (a + b")
