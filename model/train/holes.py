"""Evaluation holes cut the way an editor asks, for Python, JS/TS, Go and Rust, plus the parse and doctest judges.

Boundary: pure text in, `Hole`s out (no model, no torch); evaluate.py decodes and scores them.
Kinds: single_line at an editor cursor (any character, mid-identifier included) or at a BPE token boundary,
multi_line (a statement block's body, found with tree-sitter), and doctest (one statement of a Python function
whose doctests pass, judged by running them).
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache

# tree-sitter node types of a statement block per language (grammar names as in tree-sitter-language-pack).
BLOCK_NODES = {
    "python": "block",
    "javascript": "statement_block",
    "typescript": "statement_block",
    "go": "block",
    "rust": "block",
}


@dataclass(frozen=True)
class Hole:
    kind: str  # "single_line" | "multi_line" | "doctest"
    position: (
        str  # "editor" (any character) | "token" (a BPE token boundary) | "block" | "statement"
    )
    language: str
    prefix: str
    suffix: str
    middle: str
    origin: str
    test: str = ""  # doctest kind: the function source with a {fill} placeholder


@cache
def parser(language: str):
    # Imported here: a GPU machine that only decodes saved holes (evaluate.py --holes) needs no tree-sitter.
    from tree_sitter_language_pack import get_parser

    return get_parser(language)  # type: ignore[arg-type]  # a Literal of grammar names


def parses(source: str, language: str) -> bool:
    """Python: `ast` (tree-sitter accepts an empty block). Others: no ERROR/MISSING node in tree-sitter's tree."""
    if language == "python":
        try:
            ast.parse(source)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
        return True
    return not parser(language).parse(source.encode()).root_node.has_error


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein(a, b) / max(len): the edit-similarity metric of code-completion benchmarks."""
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1 - prev[-1] / max(len(a), len(b))


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _comment(line: str) -> bool:
    s = line.strip()
    return s.startswith(("#", "//", "/*", "*"))


def single_line_holes(
    text: str,
    origin: str,
    language: str,
    tok,
    rng: random.Random,
    canvas: int,
    k: int,
    position: str,
) -> list[Hole]:
    """Rest of a non-blank, non-comment line from the cursor: any character (editor) or a token boundary."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    candidates = [
        i for i, line in enumerate(lines) if line.strip() and not _comment(line) and len(line) < 200
    ]
    holes: list[Hole] = []
    for i in rng.sample(candidates, min(len(candidates), k * 4)):
        a, b = starts[i], starts[i + 1] - 1
        content = a + len(lines[i]) - len(lines[i].lstrip())
        if position == "editor":
            # Where a cursor rests: anywhere from the first non-blank character to the last one.
            cut = rng.randrange(content, b)
        else:
            offsets = tok(
                text[a:b], add_special_tokens=False, return_offsets_mapping=True
            ).offset_mapping
            cuts = [a + s for s, _ in offsets if a + s >= content] or [content]
            cut = content if rng.random() < 0.4 else rng.choice(cuts)
        middle = text[cut:b]
        if not middle.strip() or len(tok(middle, add_special_tokens=False).input_ids) > canvas - 1:
            continue
        holes.append(Hole("single_line", position, language, text[:cut], text[b:], middle, origin))
        if len(holes) == k:
            break
    return holes


def multi_line_holes(
    text: str, origin: str, language: str, tok, rng: random.Random, canvas: int, k: int
) -> list[Hole]:
    """A statement block's body of 2+ lines that fits the canvas, cut after its first line's indentation."""
    data = text.encode()
    tree = parser(language).parse(data)
    blocks = [
        n
        for n in _walk(tree.root_node)
        if n.type == BLOCK_NODES[language] and n.end_point[0] > n.start_point[0] + 1
    ]
    rng.shuffle(blocks)
    holes: list[Hole] = []
    for n in blocks:
        start, end = n.start_byte, n.end_byte
        if language != "python":  # braces stay; the hole is the lines between them
            inner = data[start:end]
            open_nl, close_nl = inner.find(b"\n"), inner.rfind(b"\n")
            if open_nl < 0 or close_nl <= open_nl:
                continue
            first = inner[open_nl + 1 :]
            start = start + open_nl + 1 + (len(first) - len(first.lstrip(b" \t")))
            end = n.start_byte + close_nl
        middle = data[start:end].decode(errors="replace")
        if (
            middle.count("\n") < 1
            or len(tok(middle, add_special_tokens=False).input_ids) > canvas - 1
        ):
            continue
        holes.append(
            Hole(
                "multi_line",
                "block",
                language,
                data[:start].decode(errors="replace"),
                data[end:].decode(errors="replace"),
                middle,
                origin,
            )
        )
        if len(holes) == k:
            break
    return holes


def doctest_holes(text: str, origin: str, tok, rng: random.Random, canvas: int) -> list[Hole]:
    """Top-level functions whose doctests pass on their own; the hole is one statement line of their body."""
    data = text.encode()
    holes = []
    for fn in parser("python").parse(data).root_node.children:
        if fn.type != "function_definition" or b">>>" not in data[fn.start_byte : fn.end_byte]:
            continue
        raw = data[fn.start_byte : fn.end_byte]
        body = [
            n
            for n in _walk(fn)
            if n.type in ("return_statement", "expression_statement", "assignment")
            and n.start_point[0] > fn.start_point[0]
        ]
        body = [n for n in body if not data[n.start_byte : n.end_byte].startswith((b'"', b"'"))]
        if not body:
            continue
        stmt = rng.choice(body)
        a = stmt.start_byte - fn.start_byte
        line_end = raw.find(b"\n", stmt.end_byte - fn.start_byte)
        b = len(raw) if line_end < 0 else line_end
        middle = raw[a:b].decode()
        if "\n" in middle or len(tok(middle, add_special_tokens=False).input_ids) > canvas - 1:
            continue
        template = (
            raw[:a].decode().replace("{", "{{").replace("}", "}}")
            + "{fill}"
            + raw[b:].decode().replace("{", "{{").replace("}", "}}")
        )
        if not run_doctest(template.format(fill=middle)) or run_doctest(template.format(fill="")):
            continue
        holes.append(
            Hole(
                "doctest",
                "statement",
                "python",
                data[: fn.start_byte + a].decode(),
                data[fn.start_byte + b :].decode(),
                middle,
                origin,
                template,
            )
        )
    return holes


def run_doctest(function_source: str, timeout: float = 5.0) -> bool:
    """Define the function alone in a fresh, isolated interpreter and run its doctests."""
    script = (
        "import doctest, sys\nns = {}\nexec(compile(sys.stdin.read(), 'hole', 'exec'), ns)\n"
        "fn = [v for k, v in ns.items() if callable(v) and not k.startswith('__')][0]\n"
        "r = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)\n"
        "for t in doctest.DocTestFinder().find(fn, globs=ns): r.run(t, out=lambda s: None)\n"
        "sys.exit(0 if r.failures == 0 and r.tries > 0 else 1)\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", script],
            input=textwrap.dedent(function_source),
            text=True,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


# Holes per file and per (language, kind) cap: bounded so that one split evaluates in minutes on 2 cores.
QUOTAS = {
    "python": {"editor": 100, "token": 40, "block": 30, "statement": 30},
    "other": {"editor": 30, "token": 10, "block": 10, "statement": 0},
}


def build_holes(
    records: list[dict], tok, canvas: int, seed: int = 0, scale: float = 1.0
) -> list[Hole]:
    """Holes over a split's files, spread across files (two of each kind per file at most), up to the quotas."""
    rng = random.Random(seed)
    records = sorted(records, key=lambda r: r["sha256"])
    rng.shuffle(records)
    holes: list[Hole] = []
    for language in sorted({r["language"] for r in records}):
        quota = {
            k: int(v * scale)
            for k, v in QUOTAS["python" if language == "python" else "other"].items()
        }
        got = dict.fromkeys(quota, 0)
        for r in (r for r in records if r["language"] == language):
            text, origin = r["text"], r["origin"]
            for position in ("editor", "token"):
                if got[position] < quota[position]:
                    new = single_line_holes(
                        text,
                        origin,
                        language,
                        tok,
                        rng,
                        canvas,
                        min(2, quota[position] - got[position]),
                        position,
                    )
                    holes += new
                    got[position] += len(new)
            if got["block"] < quota["block"]:
                new = multi_line_holes(text, origin, language, tok, rng, canvas, 1)
                holes += new
                got["block"] += len(new)
            if language == "python" and got["statement"] < quota["statement"] and ">>>" in text:
                new = doctest_holes(text, origin, tok, rng, canvas)[
                    : quota["statement"] - got["statement"]
                ]
                holes += new
                got["statement"] += len(new)
            if all(got[k] >= quota[k] for k in quota):
                break
    return holes
