"""Canvas golden cases: per language, a marked source (⟨⟩ = cursor, «…» = selection) and model fills.

Each case is run through the pure canvas functions; the result is compared with tests/unit/golden/<id>.json.
"""

CASES = [
    # --- Python ---------------------------------------------------------------------------------
    (
        "py_rest_of_line",
        "python",
        "def area(r):\n    return 3.14159 * ⟨⟩\n\n\nprint(area(2))\n",
        ["r * r\nprint('extra')", "r ** (", ""],
    ),
    (
        "py_expression",
        "python",
        "values = [1, 2, 3]\ntotal = sum(⟨⟩)\nprint(total)\n",
        ["values)", "values", "x for x in values"],
    ),
    (
        "py_block_after_header",
        "python",
        "def greet(name):⟨⟩\n\n\ngreet('x')\n",
        ["\n    return 'Hello, ' + name\n\nprint(1)", "\n    return ("],
    ),
    (
        "py_block_empty_line",
        "python",
        "class Stack:\n    def push(self, item):\n        ⟨⟩\n",
        [
            "self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()",
            "self.items.append(item)\n        return self",
        ],
    ),
    (
        "py_line_in_body",
        "python",
        "def f(xs):\n    out = []\n    ⟨⟩\n    return out\n",
        ["for x in xs: out.append(x)", "return out"],
    ),
    ("py_in_comment", "python", "x = 1  # the answer ⟨⟩\n", []),
    ("py_unicode", "python", '# café 中文\nname = "naïve 😀 ⟨⟩"\n', ["world", 'x" + 1']),
    (
        "py_edit_statements",
        "python",
        "def average(values):\n    «total = 0\n    count = 0»\n    for v in values:\n        total += v\n    return total\n",
        ["    total, count = 0, 0", "    total = ("],
    ),
    (
        "py_edit_partial_for",
        "python",
        "def f(xs):\n    for i in ra«nge(len(xs)):\n        pri»nt(xs[i])\n    return xs\n",
        ["    for x in xs:\n        print(x)"],
    ),
    # --- JavaScript / TypeScript ------------------------------------------------------------------
    (
        "js_rest_of_line",
        "javascript",
        "function add(a, b) {\n  return ⟨⟩\n}\n",
        ["a + b;\n}", "a +"],
    ),
    (
        "js_block",
        "javascript",
        "function clamp(v, lo, hi) {⟨⟩\n}\n",
        [
            "\n  return Math.min(hi, Math.max(lo, v));\n}\nfoo();",
            "\n  if (v < lo) {\n    return lo;\n  }",
        ],
    ),
    (
        "js_edit",
        "javascript",
        "const xs = [1, 2];\n«for (let i = 0; i < xs.length; i++) {\n  console.log(xs[i]);\n}»\n",
        ["for (const x of xs) {\n  console.log(x);\n}"],
    ),
    (
        "ts_expression",
        "typescript",
        "const names: string[] = users.map((u) => ⟨⟩);\n",
        ["u.name", "u.name)"],
    ),
    (
        "tsx_line",
        "typescriptreact",
        "export const A = () => {\n  const title = ⟨⟩\n  return <h1>{title}</h1>;\n};\n",
        ['"Hello";', "<div"],
    ),
    # --- Go -----------------------------------------------------------------------------------------
    (
        "go_block",
        "go",
        "package m\n\nfunc Sum(xs []int) int {\n\ttotal := 0\n\tfor _, x := range xs {\n\t\t⟨⟩\n\t}\n\treturn total\n}\n",
        ["total += x\n\t}\n\treturn total", "total += x"],
    ),
    (
        "go_rest_of_line",
        "go",
        "package m\n\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn ⟨⟩\n\t}\n\treturn b\n}\n",
        ["a", "a {"],
    ),
    # --- Rust ---------------------------------------------------------------------------------------
    (
        "rs_expression",
        "rust",
        "fn main() {\n    let v = vec![1, 2, 3];\n    let s: i32 = v.iter().⟨⟩;\n}\n",
        ["sum()", "sum(;"],
    ),
    (
        "rs_edit",
        "rust",
        "fn double(x: i32) -> i32 {\n    «let y = x + x;\n    y»\n}\n",
        ["    x * 2"],
    ),
    # --- a language without a grammar: plain line-based fallback ----------------------------------
    ("plain_fallback", "plaintext", "Dear team,\nThe release is ⟨⟩\n", ["ready.\nBest,"]),
]
