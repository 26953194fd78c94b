"""Context beyond the file: similar windows of other files within a budget, and imported paths."""

from __future__ import annotations

from diffgem_lsp.canvas.context import (
    SourceText,
    format_context,
    identifiers,
    imported_paths,
    jaccard,
    select_snippets,
)

SHAPES = "\n".join(
    [
        "class Rectangle:",
        "    def __init__(self, width, height):",
        "        self.width = width",
        "        self.height = height",
        "",
        "    def area(self):",
        "        return self.width * self.height",
    ]
)
UNRELATED = "\n".join(f"log_message_{i} = open_socket(port_{i})" for i in range(40))
CURSOR = "from shapes import Rectangle\n\nrect = Rectangle(width=3, height=4)\nprint(rect."


def test_identifiers_leave_out_keywords_and_one_letter_names():
    assert identifiers("def f(self, x): return self.width + x") == frozenset({"width"})
    assert jaccard(frozenset({"a1", "b1"}), frozenset({"b1", "c1"})) == 1 / 3
    assert jaccard(frozenset(), frozenset()) == 0.0


def test_the_similar_file_is_chosen_and_the_unrelated_one_is_not():
    snippets = select_snippets(
        CURSOR, [SourceText("net.py", UNRELATED), SourceText("shapes.py", SHAPES)], 2000
    )
    assert [s.path for s in snippets] == ["shapes.py"]
    assert "def area(self)" in snippets[0].text and snippets[0].score > 0.1


def test_budget_and_overlap_are_respected():
    long = "\n".join(SHAPES for _ in range(10))
    snippets = select_snippets(CURSOR, [SourceText("shapes.py", long)], 900, max_snippets=10)
    assert sum(len(s.text) + len(s.path) + 8 for s in snippets) <= 900
    spans = sorted((s.start_line, s.end_line) for s in snippets)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert select_snippets(CURSOR, [SourceText("shapes.py", SHAPES)], 0) == []
    assert select_snippets("", [SourceText("shapes.py", SHAPES)], 900) == []


def test_format_context_uses_the_languages_comment_and_puts_the_best_last():
    snippets = select_snippets(CURSOR, [SourceText("shapes.py", SHAPES)], 2000)
    header = format_context(snippets, "python")
    assert header.startswith("# shapes.py\nclass Rectangle:") and header.endswith("\n\n")
    assert format_context(snippets, "go").startswith("// shapes.py\n")
    assert format_context([], "python") == ""


def test_python_imports_resolve_absolute_relative_and_package_paths():
    text = (
        "import pkg.util\nfrom .models import User, Group as G\nfrom .. import config\nimport os\n"
    )
    pool = ["app/pkg/util.py", "app/api/models.py", "app/config.py", "app/api/views.py", "os.py"]
    found = imported_paths(text, "python", "app/api/views.py", pool)
    assert found == ["app/pkg/util.py", "app/api/models.py", "app/config.py", "os.py"]


def test_javascript_go_and_rust_imports():
    js = "import { clamp } from './math';\nconst fs = require('fs');\nconst u = require('../lib/util')\n"
    pool = ["src/math.js", "lib/util/index.js", "src/app.js"]
    assert imported_paths(js, "javascript", "src/app.js", pool) == [
        "src/math.js",
        "lib/util/index.js",
    ]
    go = 'package main\n\nimport (\n\t"fmt"\n\t"example.com/app/store"\n)\n'
    assert imported_paths(go, "go", "main.go", ["store/db.go", "main.go", "web/x.go"]) == [
        "store/db.go"
    ]
    rs = "mod parser;\nuse crate::lexer::Token;\n"
    pool = ["src/parser.rs", "src/lexer.rs", "src/main.rs"]
    assert imported_paths(rs, "rust", "src/main.rs", pool) == ["src/parser.rs", "src/lexer.rs"]
