"""Language ids -> tree-sitter parsers (bundled grammars, work offline), and syntax-error counting.

Pure apart from a parser cache. Grammars come from tree-sitter-language-pack 0.13.0 (1.x downloads them).
"""

from __future__ import annotations

from functools import cache

from tree_sitter import Node, Parser, Tree

# LSP language id -> grammar name.
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
# Languages whose blocks are delimited by indentation rather than braces.
INDENTED = frozenset({"python"})


@cache
def _parser(grammar: str) -> Parser:
    from tree_sitter_language_pack import get_parser

    return get_parser(grammar)  # type: ignore[arg-type]


def parse(text: str, language_id: str) -> Tree | None:
    grammar = GRAMMARS.get(language_id)
    if grammar is None:
        return None
    return _parser(grammar).parse(text.encode("utf-8"))


def error_count(tree: Tree | None) -> int:
    """ERROR and MISSING nodes in a tree: the measure 'parses worse' compares."""
    if tree is None:
        return 0
    count = 0
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count


def parses_no_worse(before: str, after: str, language_id: str) -> bool:
    if language_id not in GRAMMARS:
        return True
    return error_count(parse(after, language_id)) <= error_count(parse(before, language_id))
