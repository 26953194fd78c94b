"""Golden cases: per language, a marked source (⟨⟩ = cursor, «…» = selection) and model outputs to post-process.

Each case runs through the pure canvas functions; test_golden.py compares with golden/<id>.json.
Model outputs are chosen to exercise the filters: text past the unit, repeats of the suffix, broken code.
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    id: str
    language: str
    marked: str
    fills: list[str]


PYTHON = [
    Case(
        "py_rest_of_line",
        "python",
        "def area(r):\n    return 3.14159 * ⟨⟩\n\n\nprint(area(2))\n",
        ["r * r\nprint('extra')", "r ** (", "", " r * r"],
    ),
    Case(
        "py_expression_autoclosed",
        "python",
        "values = [1, 2, 3]\ntotal = sum(⟨⟩)\nprint(total)\n",
        ["values)", "values", "x for x in values", "values) + 1", "values))"],
    ),
    Case(
        "py_block_after_header",
        "python",
        "def greet(name):⟨⟩\n\n\ngreet('x')\n",
        [
            "\n    return 'Hello, ' + name\n\nprint(1)",
            "\n    return (",
            "\n    msg = name\n    return msg\ngreet('y')",
        ],
    ),
    Case(
        "py_block_multiline_header",
        "python",
        "def add(a,\n        b):⟨⟩\n",
        ["\n    return a + b\nadd(1, 2)"],
    ),
    Case(
        "py_block_empty_line",
        "python",
        "class Stack:\n    def push(self, item):\n        ⟨⟩\n",
        [
            "self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()",
            "self.items.append(item)\n        return self",
        ],
    ),
    Case(
        "py_line_in_body",
        "python",
        "def f(xs):\n    out = []\n    ⟨⟩\n    return out\n",
        ["for x in xs: out.append(x)", "return out", "\n\nout.extend(xs)"],
    ),
    Case(
        "py_end_of_body",
        "python",
        "def f(xs):\n    out = []\n    ⟨⟩\n\nprint(f([1]))\n",
        ["for x in xs:\n        out.append(x)\n    return out\nprint(2)"],
    ),
    Case(
        "py_dict_colon_is_not_a_block",
        "python",
        'config = {\n    "name":⟨⟩\n}\n',
        [' "demo",', ' "demo",\n    "port": 8080,'],
    ),
    Case(
        "py_open_paren_block",
        "python",
        "result = compute(⟨⟩\n",
        ["\n    1,\n    2,\n)\nprint(result)"],
    ),
    Case(
        "py_in_string",
        "python",
        'def greet(name):\n    message = "Hello, ⟨⟩"\n    return message\n',
        ['{name}!"', "world", 'x" + name'],
    ),
    Case("py_unicode", "python", '# café 中文\nname = "naïve 😀 ⟨⟩"\n', ["world", 'x" + 1']),
    Case("py_in_comment", "python", "x = 1  # the answer ⟨⟩\n", []),
    Case("py_mid_word", "python", "prin⟨⟩t(1)\n", []),
    Case("py_crlf_line", "python", "def f():\r\n    return ⟨⟩\r\n", ["1\nprint(2)"]),
    Case("py_crlf_block", "python", "def f():⟨⟩\r\n", ["\n    x = 1\n    return x"]),
    Case("py_whitespace_only_file", "python", "\n\n⟨⟩\n", ["import os\nimport sys"]),
    Case(
        "py_edit_statements",
        "python",
        "def average(values):\n    «total = 0\n    count = 0»\n    for v in values:\n"
        "        total += v\n    return total\n",
        ["    total, count = 0, 0", "    total = ("],
    ),
    Case(
        "py_edit_partial_for",
        "python",
        "def f(xs):\n    for i in ra«nge(len(xs)):\n        pri»nt(xs[i])\n    return xs\n",
        ["    for x in xs:\n        print(x)", "for x in xs:\n    print(x)"],
    ),
    Case(
        "py_edit_inside_expression",
        "python",
        "def f(items):\n    return [x * 2 for x in «items» if x]\n",
        ["    return [x * 3 for x in items if x]", "x = 1\n  y = 2"],
    ),
    Case("py_edit_empty_selection", "python", "a = 1\nb = «»2\nc = 3\n", ["b = 20"]),
]

JAVASCRIPT = [
    Case(
        "js_rest_of_line",
        "javascript",
        "function add(a, b) {\n  return ⟨⟩\n}\n",
        ["a + b;\n}", "a +"],
    ),
    Case(
        "js_block",
        "javascript",
        "function clamp(v, lo, hi) {⟨⟩\n}\n",
        [
            "\n  return Math.min(hi, Math.max(lo, v));\n}\nfoo();",
            "\n  if (v < lo) {\n    return lo;\n  }",
        ],
    ),
    Case(
        "js_call_autoclosed",
        "javascript",
        "const el = document.getElementById(⟨⟩);\n",
        ['"app");', '"app"', '"app")', '"app").value'],
    ),
    Case(
        "js_object_literal",
        "javascript",
        "const config = {⟨⟩\n};\n",
        ["\n  port: 8080,\n  host: 'localhost',\n};\nstart(config);"],
    ),
    Case(
        "js_end_of_body",
        "javascript",
        "function f(xs) {\n  const out = [];\n  ⟨⟩\n}\n",
        ["for (const x of xs) {\n    out.push(x);\n  }\n  return out;\n}\nf([]);"],
    ),
    Case("js_line_comment", "javascript", "// TODO ⟨⟩\nlet x = 1;\n", []),
    Case("js_block_comment", "javascript", "/* a ⟨⟩ */\nlet x = 1;\n", []),
    Case("js_after_block_comment", "javascript", "let x = /* one */⟨⟩\n", [" 1;"]),
    Case(
        "jsx_attribute",
        "javascriptreact",
        "function App() {\n  return <div className=⟨⟩></div>;\n}\n",
        ['"app"', '"app"></div>;'],
    ),
    Case(
        "js_edit",
        "javascript",
        "const xs = [1, 2];\n«for (let i = 0; i < xs.length; i++) {\n  console.log(xs[i]);\n}»\n",
        ["for (const x of xs) {\n  console.log(x);\n}"],
    ),
]

TYPESCRIPT = [
    Case(
        "ts_expression",
        "typescript",
        "const names: string[] = users.map((u) => ⟨⟩);\n",
        ["u.name", "u.name)", "u.name);"],
    ),
    Case(
        "ts_interface_block",
        "typescript",
        "interface User {⟨⟩\n}\n",
        ["\n  id: number;\n  name: string;\n}\n"],
    ),
    Case("ts_type_colon_is_not_a_block", "typescript", "let count:⟨⟩\n", [" number = 0;"]),
    Case(
        "tsx_line",
        "typescriptreact",
        "export const A = () => {\n  const title = ⟨⟩\n  return <h1>{title}</h1>;\n};\n",
        ['"Hello";', "<div"],
    ),
    Case(
        "ts_edit",
        "typescript",
        "function f(x: number): number {\n  «const y = x * 2;\n  return y;»\n}\n",
        ["  return x * 2;", "return x *"],
    ),
]

GO = [
    Case(
        "go_block",
        "go",
        "package m\n\nfunc Sum(xs []int) int {\n\ttotal := 0\n\tfor _, x := range xs {\n\t\t⟨⟩\n"
        "\t}\n\treturn total\n}\n",
        ["total += x\n\t}\n\treturn total", "total += x"],
    ),
    Case(
        "go_header_block",
        "go",
        "package m\n\nfunc Abs(x int) int {⟨⟩\n}\n",
        ["\n\tif x < 0 {\n\t\treturn -x\n\t}\n\treturn x\n}\n\nfunc main() {}"],
    ),
    Case(
        "go_rest_of_line",
        "go",
        "package m\n\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn ⟨⟩\n\t}\n\treturn b\n}\n",
        ["a", "a {"],
    ),
    Case(
        "go_call_autoclosed",
        "go",
        'package m\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println(⟨⟩)\n}\n',
        ['"hi")', '"hi"', "x, y)"],
    ),
    Case(
        "go_edit",
        "go",
        "package m\n\nfunc F(x int) int {\n\tif x «> 0 {\n\t\treturn x\n\t}»\n\treturn -x\n}\n",
        ["\tif x >= 0 {\n\t\treturn x\n\t}"],
    ),
]

RUST = [
    Case(
        "rs_expression",
        "rust",
        "fn main() {\n    let v = vec![1, 2, 3];\n    let s: i32 = v.iter().⟨⟩;\n}\n",
        ["sum()", "sum(;", "sum();"],
    ),
    Case(
        "rs_match_block",
        "rust",
        "fn f(x: Option<i32>) -> i32 {\n    match x {⟨⟩\n    }\n}\n",
        ["\n        Some(v) => v,\n        None => 0,\n    }\n}"],
    ),
    Case("rs_rest_of_line", "rust", "fn main() {\n    let x = ⟨⟩\n}\n", ["5;", "5; let y = (;"]),
    Case(
        "rs_edit",
        "rust",
        "fn double(x: i32) -> i32 {\n    «let y = x + x;\n    y»\n}\n",
        ["    x * 2", "x * 2"],
    ),
]

FALLBACK = [
    Case(
        "plain_fallback",
        "plaintext",
        "Dear team,\nThe release is ⟨⟩\n",
        ["ready.\nBest,", "  "],
    ),
    Case("plain_fallback_mid_line", "markdown", "# Title {⟨⟩}\n", ["#anchor"]),
    Case(
        "plain_fallback_edit",
        "plaintext",
        "one\n«two»\nthree\n",
        ["2"],
    ),
]

CASES = PYTHON + JAVASCRIPT + TYPESCRIPT + GO + RUST + FALLBACK

# Between braces an editor auto-closed: a block whose closer moves to its own line.
CASES += [
    Case(
        "go_between_autoclosed_braces",
        "go",
        "package m\n\nfunc F(err error) error {\n\tif err != nil {⟨⟩}\n\treturn nil\n}\n",
        ["\n\t\treturn err\n\t}\n\treturn nil", "return err", "\n\t\treturn err\n"],
    ),
    Case(
        "ts_between_autoclosed_braces",
        "typescript",
        "const f = (x: number) => {⟨⟩};\n",
        ["\n  return x * 2;\n};", "return x * 2;"],
    ),
    Case("py_braces_are_a_dict", "python", "d = {⟨⟩}\n", ['"a": 1', '\n    "a": 1,\n']),
]

# Blank lines inside bodies, for the languages above that lack one.
CASES += [
    Case(
        "ts_empty_line_in_body",
        "typescript",
        "class Counter {\n  private n = 0;\n  increment(): number {\n    ⟨⟩\n  }\n}\n",
        [
            "this.n += 1;\n    return this.n;\n  }\n}",
            "this.n += 1;\n    return this.n;\n  }\n\n  reset() {",
        ],
    ),
    Case(
        "rs_empty_line_in_body",
        "rust",
        "fn sum(xs: &[i32]) -> i32 {\n    let mut total = 0;\n    ⟨⟩\n    total\n}\n",
        ["for x in xs {\n        total += x;\n    }", "total += xs[0]\n    total"],
    ),
    Case(
        "tsx_edit",
        "typescriptreact",
        "export const A = () => (\n  <ul>\n    «<li>one</li>»\n  </ul>\n);\n",
        ["    <li>One</li>", "    <li>One</l"],
    ),
]
