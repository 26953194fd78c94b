"""Multi-hole canvases: placeholders per language, one canvas per unit, and joint post-processing.

Golden files (golden/multihole/*.json) show each unit's request to the engine and, for model fills,
the edits and the document they lead to. Regenerate with `--update-golden` and review the diff.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from diffgem_lsp import canvas as C
from diffgem_lsp.canvas.multihole import build_multihole_canvases, postprocess_multihole
from diffgem_lsp.canvas.placeholders import find_placeholders

from .test_golden import apply_edits, lines

# (id, language, source, fills per canvas in document order)
CASES = [
    (
        "py_class",
        "python",
        "class Stack:\n"
        "    def __init__(self):\n"
        "        self.items = []\n"
        "\n"
        "    def push(self, item):\n"
        "        pass\n"
        "\n"
        "    def pop(self):\n"
        "        if not self.items:\n"
        "            raise NotImplementedError('empty')\n"
        "        # TODO: return the last item\n"
        "        ...\n"
        "\n"
        "    def size(self):\n"
        "        try:\n"
        "            return len(self.items)\n"
        "        except TypeError:\n"
        "            pass\n",
        [
            ["self.items.append(item)\n\n    def pop(self):\n        return 1"],
            ["raise IndexError('pop from empty stack')", "return self.items.pop()"],
        ],
    ),
    (
        "py_todo_comment_inserts",
        "python",
        "def mean(xs):\n    total = sum(xs)\n    # TODO: divide by the count\n\n\nprint(mean([1, 2]))\n",
        [["return total / len(xs)\nprint(mean([1, 2]))"]],
    ),
    (
        "py_joint_fill_that_breaks_is_dropped",
        "python",
        "def f(a):\n    if a:\n        pass\n    else:\n        pass\n",
        [["return (", "return -a"]],
    ),
    (
        "rust_todo_and_unimplemented",
        "rust",
        "fn add(x: i32, y: i32) -> i32 {\n    todo!()\n}\n\n"
        "fn log(msg: &str) {\n    unimplemented!();\n}\n",
        [["x + y\n}\n\nfn extra() {}"], ['println!("{}", msg);']],
    ),
    (
        "go_panic_todo",
        "go",
        'package main\n\nfunc Max(a, b int) int {\n\tpanic("TODO")\n}\n\n'
        'func Fail() {\n\tpanic("unreachable")\n}\n',
        [["if a > b {\n\t\treturn a\n\t}\n\treturn b"]],
    ),
    (
        "js_throw_todo",
        "javascript",
        "class Ring {\n  constructor(n) {\n    this.buf = new Array(n);\n  }\n"
        "  push(x) {\n    throw new Error('TODO');\n  }\n}\n"
        "const clamp = (x, lo, hi) => {\n  // TODO clamp x\n};\n",
        [["this.buf.push(x);"], ["return Math.min(hi, Math.max(lo, x));\n};"]],
    ),
    (
        "ts_not_implemented",
        "typescript",
        "function area(r: number): number {\n  throw new Error('not implemented');\n}\n",
        [["return Math.PI * r * r;"]],
    ),
]


def run(language: str, text: str, fills: list[list[str]]) -> dict:
    canvases = build_multihole_canvases(text, language)
    assert len(canvases) == len(fills), [c.unit for c in canvases]
    out: dict = {"language": language, "input": lines(text), "canvases": []}
    for canvas, unit_fills in zip(canvases, fills, strict=True):
        result = postprocess_multihole(canvas, list(unit_fills))
        document = apply_edits(text, result.edits)
        start, end = C.offset_at(text, canvas.start), C.offset_at(text, canvas.end)
        assert document == text[:start] + result.new_text + text[end:]
        out["canvases"].append(
            {
                "unit": canvas.unit,
                "range": [asdict(canvas.start), asdict(canvas.end)],
                "holes": [h.kind for h in canvas.holes],
                "request": canvas.request() | {"prefix": canvas.prefix[-60:]},
                "fills": unit_fills,
                "filled": result.filled,
                "edits": [asdict(e) for e in result.edits],
                "document": lines(document),
            }
        )
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_multihole_golden(case, golden):
    name, language, text, fills = case
    golden(f"multihole/{name}", run(language, text, fills))


def test_placeholders_that_are_deliberate_are_not_holes():
    text = (
        "def f():\n    try:\n        g()\n    except KeyError:\n        pass\n    return 1\n"
        "class Empty(Exception):\n    pass\n"
        "def h():\n    x = 1  # TODO later\n    return x\n"
    )
    kinds = [(p.kind, p.unit) for p in find_placeholders(text, "python")]
    # The exception class's lone `pass` is a hole of the class; the except's and the trailing
    # comment are not.
    assert kinds == [("pass", "class_definition")]


def test_module_level_and_unsupported_languages_have_no_canvas():
    assert build_multihole_canvases("pass\n...\n", "python") == []
    assert build_multihole_canvases("def f():\n    pass\n", "plaintext") == []


def test_range_selects_the_units_it_touches():
    text = "def a():\n    pass\n\n\ndef b():\n    pass\n"
    only_b = build_multihole_canvases(text, "python", C.Position(4, 0), C.Position(4, 3))
    assert [c.start.line for c in only_b] == [4]
    assert len(build_multihole_canvases(text, "python")) == 2


def test_segments_and_holes_rebuild_the_document():
    _, language, text, _ = CASES[0]
    for canvas in build_multihole_canvases(text, language):
        rebuilt = canvas.prefix
        for i, hole in enumerate(canvas.holes):
            rebuilt += hole.placeholder + (canvas.segments[i] if i < len(canvas.segments) else "")
        assert rebuilt + canvas.suffix == text


def test_empty_fills_keep_every_placeholder():
    text = "def f():\n    pass\n"
    (canvas,) = build_multihole_canvases(text, "python")
    result = postprocess_multihole(canvas, ["", None][:1])
    assert result.edits == [] and result.filled == [False]


def test_crlf_documents_get_crlf_fills():
    text = "def f(a):\r\n    pass\r\n"
    (canvas,) = build_multihole_canvases(text, "python")
    result = postprocess_multihole(canvas, ["b = a\n    return b"])
    assert result.new_text == "def f(a):\r\n    b = a\r\n    return b"


def test_a_comment_is_not_a_fill():
    text = "def f(a):\n    pass\n"
    (canvas,) = build_multihole_canvases(text, "python")
    assert postprocess_multihole(canvas, ["# compute it\n    # later"]).filled == [False]
