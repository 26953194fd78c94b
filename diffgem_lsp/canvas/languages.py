"""Language ids -> tree-sitter parsers (bundled grammars, offline), and how badly a text parses.

Pure apart from caches (parsers per grammar, the last few trees); no LSP types. Not thread-safe: call
from one thread. Grammars come from tree-sitter-language-pack 0.13.0, which bundles them (1.x
downloads grammars at run time and fails offline).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cache

from tree_sitter import Node, Parser, Point, Query, QueryCursor, Tree

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
# Trees of the last few texts parsed: a canvas parses the document, and post-processing re-parses
# the same document with a fill spliced in, incrementally from that tree (a 1 MB file takes ~150 ms
# to parse whole, a few ms incrementally).
_RECENT: OrderedDict[tuple[str, str], Tree] = OrderedDict()
_RECENT_SIZE = 4

Score = tuple[int, int]  # (error nodes, damaged bytes): see error_score


@cache
def _parser(grammar: str) -> Parser:
    from tree_sitter_language_pack import get_parser

    return get_parser(grammar)  # type: ignore[arg-type]


@cache
def _block_query(grammar: str) -> Query:
    from tree_sitter_language_pack import get_language

    return Query(get_language(grammar), "(block) @block")  # type: ignore[arg-type]


def grammar_of(language_id: str | None) -> str | None:
    """The grammar for an LSP language id, or None: that language gets the line-based fallback."""
    if not language_id:
        return None
    language_id = language_id.lower()
    return GRAMMARS.get(ALIASES.get(language_id, language_id))


def is_indented(language_id: str) -> bool:
    return grammar_of(language_id) in INDENTED


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _remember(key: tuple[str, str], tree: Tree) -> Tree:
    _RECENT[key] = tree
    _RECENT.move_to_end(key)
    while len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)
    return tree


def parse(text: str, language_id: str) -> Tree | None:
    """The syntax tree of `text`, or None for a language without a grammar."""
    grammar = grammar_of(language_id)
    if grammar is None:
        return None
    tree = _RECENT.get((grammar, text))
    if tree is None:
        tree = _reparse(grammar, text)
    return _remember((grammar, text), tree)


def _reparse(grammar: str, text: str) -> Tree:
    """A new text's tree, parsed incrementally from the newest cached tree of its grammar: while the
    user types, that is the document a keystroke ago, and a whole parse of a 20 KB file on every
    keystroke was ~3 ms of each request (bench/backends.py). The edit between the two texts is their
    common prefix and suffix, so the tree is the one a fresh parse gives (tree-sitter re-parses what
    the edit touched; the same path parse_spliced takes)."""
    base = next(((t, tree) for (g, t), tree in reversed(_RECENT.items()) if g == grammar), None)
    if base is None:
        return _parser(grammar).parse(_encode(text))
    old, tree = base
    start = _common_prefix(old, text)
    end = _common_suffix(old, text, min(len(old), len(text)) - start)
    return _spliced_tree(grammar, old, tree, start, len(old) - end, text[start : len(text) - end])


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of a and b, by halving: each test is one C comparison."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common suffix of a and b, at most `limit` (the prefix is not counted twice)."""
    low, high = 0, max(0, limit)
    while low < high:
        mid = (low + high + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            low = mid
        else:
            high = mid - 1
    return low


def _point(text: str, offset: int) -> Point:
    line_start = text.rfind("\n", 0, offset) + 1
    return Point(text.count("\n", 0, offset), len(_encode(text[line_start:offset])))


def parse_spliced(text: str, language_id: str, start: int, end: int, insert: str) -> Tree | None:
    """The tree of text[:start] + insert + text[end:], re-parsed incrementally from `text`'s tree."""
    grammar = grammar_of(language_id)
    base = parse(text, language_id)
    if grammar is None or base is None:
        return None
    return _spliced_tree(grammar, text, base, start, end, insert)


def _spliced_tree(grammar: str, text: str, base: Tree, start: int, end: int, insert: str) -> Tree:
    """The tree of text[:start] + insert + text[end:] from `base`, the tree of `text` (left as is)."""
    new_text = text[:start] + insert + text[end:]
    start_byte = len(_encode(text[:start]))
    start_point = _point(text, start)
    last_line = insert[insert.rfind("\n") + 1 :]
    rows = insert.count("\n")
    column = len(_encode(last_line)) + (start_point.column if rows == 0 else 0)
    tree = base.copy()
    tree.edit(
        start_byte=start_byte,
        old_end_byte=start_byte + len(_encode(text[start:end])),
        new_end_byte=start_byte + len(_encode(insert)),
        start_point=start_point,
        old_end_point=_point(text, end),
        new_end_point=Point(start_point.row + rows, column),
    )
    return _parser(grammar).parse(_encode(new_text), tree)


def _block_faults(tree: Tree, low: int, high: int) -> int:
    """Python bodies tree-sitter accepts but Python does not, in blocks touching bytes [low, high]:
    an empty body (`def f():` with nothing under it), statements at different indentation, and
    top-level statements near the hole that are indented (tree-sitter accepts all three)."""
    faults = 0
    walker = tree.walk()
    # (Node.first_named_child_for_byte crashes past the last child in py-tree-sitter 0.26.1.)
    if walker.goto_first_child_for_byte(max(0, low - 1)) is not None:
        while walker.node is not None and walker.node.start_byte <= high + 1:
            node = walker.node
            faults += node.is_named and node.type != "comment" and node.start_point.column != 0
            if not walker.goto_next_sibling():
                break
    cursor = QueryCursor(_block_query("python"))
    cursor.set_byte_range(max(0, low - 1), high + 1)
    for block in cursor.captures(tree.root_node).get("block", []):
        if block.start_byte == block.end_byte:
            faults += 1
            continue
        columns = {c.start_point.column for c in block.named_children if c.type != "comment"}
        faults += len(columns) > 1
    return faults


def error_score(tree: Tree | None, hole: tuple[int, int] = (0, 0), grammar: str = "") -> Score:
    """(error nodes, bytes inside ERROR nodes outside the byte range `hole`) — lower is better.

    Error nodes are ERROR and MISSING nodes (SAFIM's "parses worse"), plus, for Python, bodies near the
    hole that tree-sitter accepts but Python rejects. The damaged bytes stand in for SAFIM's other
    check, that the tree outside the hole is unchanged: a fill that makes the parser swallow the code
    after it into an ERROR node may leave the count alone, but it grows the damaged region.
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
    if grammar == "python":
        count += _block_faults(tree, *hole)
    return count, damaged


def syntax_score(text: str, language_id: str, hole: tuple[int, int] = (0, 0)) -> Score:
    """error_score of `text`, with `hole` given as str offsets ((0, 0) without a grammar)."""
    grammar = grammar_of(language_id)
    if grammar is None:
        return 0, 0
    byte_hole = (len(_encode(text[: hole[0]])), len(_encode(text[: hole[1]])))
    return error_score(parse(text, language_id), byte_hole, grammar)


def spliced_score(text: str, language_id: str, start: int, end: int, insert: str) -> Score:
    """error_score of text[:start] + insert + text[end:], the inserted text being the hole."""
    grammar = grammar_of(language_id)
    if grammar is None:
        return 0, 0
    low = len(_encode(text[:start]))
    tree = parse_spliced(text, language_id, start, end, insert)
    return error_score(tree, (low, low + len(_encode(insert))), grammar)


def no_worse(before: Score, after: Score) -> bool:
    """Whether a score is no worse than another: no more error nodes, no more damaged code."""
    return after[0] <= before[0] and after[1] <= before[1]


def error_count(tree: Tree | None) -> int:
    """ERROR and MISSING nodes in a tree."""
    return error_score(tree)[0]


def parses_no_worse(before: str, after: str, language_id: str) -> bool:
    """Whether `after` has no more ERROR/MISSING nodes than `before` (always true without a grammar)."""
    return syntax_score(after, language_id)[0] <= syntax_score(before, language_id)[0]
