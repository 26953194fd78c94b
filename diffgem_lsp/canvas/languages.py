"""Language ids -> tree-sitter parsers (bundled grammars, offline), and syntax-error counting.

Pure apart from a per-grammar parser cache; no LSP types. Grammars come from tree-sitter-language-pack
0.13.0, which bundles them (1.x downloads grammars at run time and fails offline).
"""

from __future__ import annotations

from functools import cache

from tree_sitter import Node, Parser, Tree

# LSP language id -> grammar name (the ids of the LSP spec's table, which VS Code and Neovim send).
GRAMMARS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
}
SUPPORTED_LANGUAGES = frozenset(GRAMMARS)
# Other ids some clients send for the same languages: eglot derives ids from major-mode names
# ("js", "tsx"), and a user's client config may say "jsx" or "golang".
ALIASES = {
    "js": "javascript",
    "jsx": "javascriptreact",
    "ts": "typescript",
    "tsx": "typescriptreact",
    "golang": "go",
    "py": "python",
    "python3": "python",
    "rs": "rust",
}
# Languages whose blocks are delimited by indentation rather than braces.
INDENTED = frozenset({"python"})


@cache
def _parser(grammar: str) -> Parser:
    from tree_sitter_language_pack import get_parser

    return get_parser(grammar)  # type: ignore[arg-type]


def grammar_of(language_id: str) -> str | None:
    """The grammar for an LSP language id, or None: that language gets the line-based fallback."""
    if not language_id:
        return None
    language_id = language_id.lower()
    return GRAMMARS.get(ALIASES.get(language_id, language_id))


def is_indented(language_id: str) -> bool:
    return grammar_of(language_id) in INDENTED


def parse(text: str, language_id: str) -> Tree | None:
    """A fresh syntax tree, or None for a language without a grammar.

    Parsers are cached per grammar and are not thread-safe: call from one thread (the server's loop).
    """
    grammar = grammar_of(language_id)
    if grammar is None:
        return None
    return _parser(grammar).parse(text.encode("utf-8", "surrogatepass"))


def error_score(tree: Tree | None, hole: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(ERROR and MISSING nodes, bytes inside ERROR nodes outside the byte range `hole`).

    The count is SAFIM's measure of "parses worse". The bytes stand in for its other check, that the
    tree outside the hole is unchanged: a fill that makes the parser swallow the code after it into an
    ERROR node may leave the count alone but grows the damaged region.
    """
    if tree is None:
        return 0, 0
    count = damaged = 0
    stack: list[tuple[Node, bool]] = [(tree.root_node, False)]
    while stack:
        node, inside_error = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.is_error and not inside_error:
            overlap = max(0, min(node.end_byte, hole[1]) - max(node.start_byte, hole[0]))
            damaged += node.end_byte - node.start_byte - overlap
        if node.has_error:  # only subtrees with an error below them need a visit
            stack.extend((child, inside_error or node.is_error) for child in node.children)
    return count, damaged


def error_count(tree: Tree | None) -> int:
    """ERROR and MISSING nodes in a tree."""
    return error_score(tree)[0]


def syntax_score(text: str, language_id: str, hole: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """error_score of `text` parsed, with `hole` given as str offsets."""
    if grammar_of(language_id) is None:
        return 0, 0
    byte_hole = (_bytes(text[: hole[0]]), _bytes(text[: hole[1]]))
    return error_score(parse(text, language_id), byte_hole)


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def no_worse(before: tuple[int, int], after: tuple[int, int]) -> bool:
    """Whether a score is no worse than another: no more error nodes, no more damaged code."""
    return after[0] <= before[0] and after[1] <= before[1]


def syntax_errors(text: str, language_id: str) -> int:
    return error_count(parse(text, language_id))


def parses_no_worse(before: str, after: str, language_id: str) -> bool:
    """Whether `after` has no more ERROR/MISSING nodes than `before` (always true without a grammar)."""
    if grammar_of(language_id) is None:
        return True
    return syntax_errors(after, language_id) <= syntax_errors(before, language_id)
