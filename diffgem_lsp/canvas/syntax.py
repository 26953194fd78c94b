"""Syntax-tree questions the canvases ask at a cursor: in a comment? does this line open a block?

Pure queries over a tree-sitter tree and the document's UTF-8 bytes; byte offsets in, plain values out.
"""

from __future__ import annotations

from tree_sitter import Node, Tree

# Python compound statements: a ':' ending their header line opens an indented body. Anything else
# that ends a line with ':' (a dict key, a slice, a lambda, a type annotation) does not.
PY_COMPOUND = frozenset(
    {
        "function_definition",
        "class_definition",
        "if_statement",
        "elif_clause",
        "else_clause",
        "for_statement",
        "while_statement",
        "try_statement",
        "except_clause",
        "except_group_clause",
        "finally_clause",
        "with_statement",
        "match_statement",
        "case_clause",
    }
)
# While the body is still missing the header often parses as an ERROR node; the keyword decides then.
PY_COMPOUND_KEYWORDS = (
    "def ",
    "async ",
    "class ",
    "if ",
    "elif ",
    "else",
    "for ",
    "while ",
    "try",
    "except",
    "finally",
    "with ",
    "match ",
    "case ",
)
# Nodes that only hold a header's body (or a literal's entries): the statement is their parent.
BODY_NODES = frozenset(
    {
        "block",
        "statement_block",
        "statement_list",
        "module",
        "program",
        "source_file",
        "class_body",
        "declaration_list",
        "field_declaration_list",
        "enum_variant_list",
        "interface_body",
        "object_type",
        "switch_body",
        "match_block",
        "object",
        "dictionary",
        "literal_value",
        "field_initializer_list",
        "argument_list",
        "arguments",
        "array",
        "list",
    }
)
OPENERS = frozenset({"{", "(", "["})
# Braced languages' `case x:` / `default:` labels: a ':' that opens the statements under it.
CASE_LABELS = frozenset(
    {
        "switch_case",
        "switch_default",
        "expression_case",
        "default_case",
        "type_case",
        "communication_case",
    }
)


def leaf_ending_at(tree: Tree, byte: int) -> Node | None:
    """The smallest node covering the byte just before `byte` (the token the cursor follows)."""
    if byte <= 0:
        return None
    return tree.root_node.descendant_for_byte_range(byte - 1, byte)


def in_comment(tree: Tree, byte: int) -> bool:
    """Whether a cursor at `byte` is inside a comment (at the very end of a line comment counts)."""
    node = leaf_ending_at(tree, byte)
    while node is not None:
        if "comment" in node.type and node.start_byte < byte <= node.end_byte:
            # A block comment's closing "*/" is its end: a cursor after it is outside.
            text = node.text or b""
            return not (text.endswith(b"*/") and byte == node.end_byte)
        node = node.parent
    return False


def in_string(tree: Tree, byte: int) -> bool:
    node = leaf_ending_at(tree, byte)
    while node is not None:
        if "string" in node.type and node.start_byte < byte < node.end_byte:
            return True
        node = node.parent
    return False


def block_header_row(tree: Tree, byte: int, grammar: str, line_text: str) -> int | None:
    """If the token ending at `byte` opens a block (a body, a literal's entries, an argument list
    spread over lines), the row where its statement starts; else None.

    The row matters because a header may span lines (`def f(a,\\n      b):`): the body's indentation is
    measured from the statement's first line, not from the cursor's line.
    """
    leaf = leaf_ending_at(tree, byte)
    if leaf is None or leaf.end_byte != byte:
        return None
    parent = leaf.parent
    if leaf.type == ":" and grammar == "python":
        if parent is not None and parent.type in PY_COMPOUND:
            return parent.start_point.row
        if (parent is None or parent.type == "ERROR") and line_text.lstrip().startswith(
            PY_COMPOUND_KEYWORDS
        ):
            return leaf.start_point.row
        return None
    if leaf.type == ":" and parent is not None and parent.type in CASE_LABELS:
        return parent.start_point.row
    if leaf.type not in OPENERS:
        return None
    if parent is None or parent.type == "ERROR":
        return leaf.start_point.row
    statement = parent
    if parent.type in BODY_NODES and parent.parent is not None and parent.parent.type != "ERROR":
        statement = parent.parent
        if statement.parent is None:  # the root: the opener's own line is the best guess
            return leaf.start_point.row
    return statement.start_point.row
