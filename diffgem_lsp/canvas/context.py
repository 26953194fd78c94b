"""Context beyond the file: snippets of other open documents and imported files, chosen by similarity.

Pure: texts and paths in, snippets and a prompt header out (no LSP types, no file I/O — the caller
reads what `imported_paths` names). Similarity is Jaccard over identifier sets of sliding line windows,
as in RepoCoder (Zhang et al. 2023, arXiv:2303.12570, "sparse retriever") and GitHub Copilot's
neighbouring-tabs context (github.blog, "How GitHub Copilot is getting better at understanding your
code", 2023): the window of lines before the cursor is the query.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .languages import grammar_of

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words every file of a language has: they make any two windows look alike.
KEYWORDS = frozenset(
    "and as assert async await break case catch class const continue def default del elif else "
    "enum except export extends false finally fn for from func function go if impl import in "
    "interface is let loop match mod mut new nil none not null or package pass pub raise return "
    "self static struct super switch this throw true try type use var while with yield "
    "None True False int str bool string number void".split()
)
WINDOW_LINES = 20  # RepoCoder's retrieval window is 20 lines with a stride of 10
STRIDE_LINES = 10
QUERY_LINES = 20
COMMENT = {"python": "#", None: "//"}


@dataclass(frozen=True)
class SourceText:
    path: str  # workspace-relative path or URI, shown to the model in the snippet header
    text: str


@dataclass(frozen=True)
class Snippet:
    path: str
    start_line: int  # zero-based, inclusive
    end_line: int  # exclusive
    text: str
    score: float  # Jaccard similarity with the query window


def identifiers(text: str) -> frozenset[str]:
    """The identifiers of a text, keywords and one-letter names left out."""
    return frozenset(
        w for w in IDENTIFIER.findall(text) if len(w) > 1 and w.lower() not in KEYWORDS
    )


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def query_window(before_cursor: str, lines: int = QUERY_LINES) -> frozenset[str]:
    """The identifiers of the last `lines` lines before the cursor."""
    tail = before_cursor.rsplit("\n", lines)[-lines:] if lines > 0 else []
    return identifiers("\n".join(tail))


@functools.lru_cache(maxsize=64)
def _windows(text: str, size: int, stride: int) -> tuple[tuple[int, int, str, frozenset[str]], ...]:
    """Sliding windows of lines with their identifier sets, memoised: an open document is the same
    string object from one keystroke in another file to the next, so its windows are indexed once."""
    lines = text.split("\n")
    out = []
    for start in range(0, max(1, len(lines) - size + stride), stride):
        end = min(len(lines), start + size)
        window = "\n".join(lines[start:end])
        out.append((start, end, window, identifiers(window)))
        if end == len(lines):
            break
    return tuple(out)


def select_snippets(
    before_cursor: str,
    sources: Iterable[SourceText],
    budget_chars: int,
    *,
    window_lines: int = WINDOW_LINES,
    stride_lines: int = STRIDE_LINES,
    min_score: float = 0.1,
    max_snippets: int = 4,
) -> list[Snippet]:
    """The windows of `sources` most similar to the code before the cursor, best first, whose texts
    fit `budget_chars` together. Overlapping windows of one file are not both taken; windows below
    `min_score` are never taken (an unrelated snippet only costs prompt)."""
    query = query_window(before_cursor)
    if not query or budget_chars <= 0:
        return []
    scored = []
    for source in sources:
        for start, end, text, names in _windows(source.text, window_lines, stride_lines):
            score = jaccard(query, names)
            if score >= min_score and text.strip():
                scored.append(Snippet(source.path, start, end, text.strip("\n"), score))
    scored.sort(key=lambda s: (-s.score, s.path, s.start_line))
    chosen: list[Snippet] = []
    used = 0
    for snippet in scored:
        if len(chosen) >= max_snippets:
            break
        if any(
            c.path == snippet.path
            and c.start_line < snippet.end_line
            and snippet.start_line < c.end_line
            for c in chosen
        ):
            continue
        cost = len(snippet.text) + len(snippet.path) + 8  # the header line
        if used + cost > budget_chars:
            continue
        chosen.append(snippet)
        used += cost
    return chosen


def format_context(snippets: list[Snippet], language_id: str) -> str:
    """The snippets as comment-headed blocks to put before the prefix. Most similar last: nearest the
    cursor, where a small model's attention is best. Ends with a blank line."""
    if not snippets:
        return ""
    mark = COMMENT.get(grammar_of(language_id), COMMENT[None])
    blocks = [f"{mark} {s.path}\n{s.text}\n" for s in reversed(snippets)]
    return "\n".join(blocks) + "\n"


_PY_IMPORT = re.compile(
    r"^\s*(?:from\s+(\.*[\w.]*)\s+import\s+([\w, ]+)|import\s+([\w., ]+))", re.M
)
_JS_IMPORT = re.compile(r"""(?:from\s+|require\(\s*|import\s+)['"](\.{1,2}/[^'"]+)['"]""")
_GO_IMPORT = re.compile(r'"([\w./-]+)"')
_RS_MOD = re.compile(r"^\s*(?:pub\s+)?mod\s+(\w+)\s*;", re.M)
_RS_USE = re.compile(r"^\s*use\s+crate::([\w:]+)", re.M)


def _python_modules(text: str, here: str) -> list[str]:
    """Path stems (without .py) that the file's imports may name, relative ones resolved."""
    stems = []
    for m in _PY_IMPORT.finditer(text):
        if m.group(3):
            for name in m.group(3).split(","):
                stems.append(name.split(" as ")[0].strip().replace(".", "/"))
            continue
        module, names = m.group(1), [n.strip() for n in m.group(2).split(",") if n.strip()]
        dots = len(module) - len(module.lstrip("."))
        base = module.lstrip(".").replace(".", "/")
        if dots:
            root = here
            for _ in range(dots - 1):
                root = posixpath.dirname(root)
            base = posixpath.join(root, base) if base else root
        stems.append(base)
        stems += [posixpath.join(base, n.split(" as ")[0].strip()) for n in names]
    return [s for s in stems if s]


def imported_paths(text: str, language_id: str, path: str, candidates: Iterable[str]) -> list[str]:
    """The paths among `candidates` (workspace-relative, "/"-separated) that the file at `path`
    imports, in import order. Python: modules and packages (absolute ones matched by path suffix);
    JavaScript/TypeScript: relative specifiers; Go: the imported package's directory; Rust: `mod x;`
    and `use crate::…`."""
    grammar = grammar_of(language_id)
    here = posixpath.dirname(path)
    pool = [c for c in candidates if c != path]
    wanted: list[str] = []
    if grammar == "python":
        for stem in _python_modules(text, here):
            wanted += [f"{stem}.py", f"{stem}/__init__.py"]
    elif grammar in ("javascript", "typescript", "tsx"):
        for spec in _JS_IMPORT.findall(text):
            stem = posixpath.normpath(posixpath.join(here, spec))
            wanted += [stem] + [f"{stem}{ext}" for ext in (".js", ".ts", ".tsx", ".jsx", ".mjs")]
            wanted += [f"{stem}/index{ext}" for ext in (".js", ".ts")]
    elif grammar == "go":
        block = re.search(r"import\s*(\([^)]*\)|\"[^\"]+\")", text)
        for package in _GO_IMPORT.findall(block.group(1) if block else ""):
            last = package.rsplit("/", 1)[-1]
            wanted += [c for c in pool if c.endswith(".go") and posixpath.dirname(c).endswith(last)]
    elif grammar == "rust":
        for name in _RS_MOD.findall(text):
            wanted += [posixpath.join(here, f"{name}.rs"), posixpath.join(here, name, "mod.rs")]
        for use in _RS_USE.findall(text):
            parts = use.split("::")
            for k in range(len(parts), 0, -1):
                stem = "/".join(parts[:k])
                wanted += [f"src/{stem}.rs", f"src/{stem}/mod.rs"]
    found: list[str] = []
    for want in wanted:
        for c in pool:
            exact = c == want
            suffix = grammar == "python" and not want.startswith(".") and c.endswith("/" + want)
            if (exact or suffix) and c not in found:
                found.append(c)
    return found
