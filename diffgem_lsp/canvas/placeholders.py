"""Placeholders in code: `pass`, `...`, `# TODO`, `raise NotImplementedError`, `todo!()`, `panic("TODO")`…

Pure queries over a tree-sitter tree (languages.parse); str offsets out. No LSP types, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from .languages import grammar_of, parse
from .positions import offset_of_byte

# A comment asks for code when it says TODO/FIXME (PEP 350's codetags; the words every linter's
# "todo" rule matches, e.g. ruff's FIX001-FIX004).
TODO_WORDS = re.compile(r"\b(TODO|FIXME|XXX)\b")
# A panic/throw message that marks unwritten code rather than a real error path.
TODO_MESSAGE = re.compile(r"\b(todo|fixme|not implemented|unimplemented)\b", re.IGNORECASE)
# The units a canvas is built around: the innermost function, else the innermost class/impl.
FUNCTION_UNITS = frozenset(
    {
        "function_definition",  # python
        "function_declaration",  # javascript, typescript, go
        "generator_function_declaration",
        "function_expression",
        "function",
        "arrow_function",
        "method_definition",
        "method_declaration",  # go
        "func_literal",
        "function_item",  # rust
        "closure_expression",
    }
)
CLASS_UNITS = frozenset(
    {
        "class_definition",
        "class_declaration",
        "class",
        "impl_item",
        "trait_item",
    }
)
BODIES = frozenset({"block", "statement_block", "statement_list"})
# Exceptions a placeholder may name: `raise NotImplementedError` leaves the body to be written.
NOT_IMPLEMENTED = frozenset({"NotImplementedError", "NotImplemented"})


@dataclass(frozen=True)
class Placeholder:
    kind: str  # pass | ellipsis | not_implemented | todo_macro | todo_panic | todo_throw | todo_comment
    start: int  # str offsets of the text a fill replaces (empty after a TODO comment: an insertion)
    end: int
    unit_start: int  # the enclosing unit's str offsets (see FUNCTION_UNITS / CLASS_UNITS)
    unit_end: int
    unit: str  # the unit's node type
    column: int  # str column of the hole's line indentation (where the fill's statements start)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _stands_in(node: Node) -> bool:
    """Whether a `pass` or `...` stands in for code: it is the only statement of its body (comments
    aside), or a TODO comment sits right above it. Next to other statements it is deliberate, and
    `except E: pass` swallows an exception on purpose."""
    parent = node.parent
    while parent is not None and parent.type == "expression_statement":
        node, parent = parent, parent.parent
    if parent is None or parent.type not in BODIES:
        return False
    if parent.parent is not None and parent.parent.type in ("except_clause", "except_group_clause"):
        return False
    above = node.prev_sibling
    if above is not None and "comment" in above.type and TODO_WORDS.search(_text(above)):
        return True
    return [c for c in parent.named_children if c.type != "comment"] == [node]


def _statement(node: Node) -> Node:
    """The statement an expression placeholder stands as (`todo!();`), or the expression itself."""
    parent = node.parent
    return parent if parent is not None and parent.type == "expression_statement" else node


def _string_argument(node: Node | None) -> str:
    if node is None:
        return ""
    return " ".join(_text(c) for c in node.named_children if "string" in c.type)


def _kind(node: Node, grammar: str) -> tuple[str, Node] | None:
    """(kind, the node a fill replaces) if `node` is a placeholder, else None."""
    t = node.type
    if grammar == "python":
        if t == "pass_statement" and _stands_in(node):
            return "pass", node
        if t == "ellipsis" and _stands_in(node):
            return "ellipsis", _statement(node)
        if t == "raise_statement" and node.named_children:
            raised = node.named_children[0]
            name = raised.child_by_field_name("function") if raised.type == "call" else raised
            if name is not None and _text(name) in NOT_IMPLEMENTED:
                return "not_implemented", node
        return None
    if grammar == "rust" and t == "macro_invocation":
        macro = node.child_by_field_name("macro") or (node.children[0] if node.children else None)
        if macro is not None and _text(macro) in ("todo", "unimplemented"):
            return "todo_macro", _statement(node)
        return None
    if grammar == "go" and t == "call_expression":
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is not None and _text(function) == "panic":
            if TODO_MESSAGE.search(_string_argument(arguments)):
                return "todo_panic", _statement(node)
        return None
    if t == "throw_statement" and node.named_children:
        thrown = node.named_children[0]
        if thrown.type == "new_expression":
            constructor = thrown.child_by_field_name("constructor")
            arguments = thrown.child_by_field_name("arguments")
            if constructor is not None and _text(constructor) == "Error":
                if TODO_MESSAGE.search(_string_argument(arguments)):
                    return "todo_throw", node
    return None


def _unit_of(node: Node) -> Node | None:
    """The innermost function around `node`, else the innermost class (None: module level)."""
    klass = None
    parent = node.parent
    while parent is not None:
        if parent.type in FUNCTION_UNITS:
            return parent
        if klass is None and parent.type in CLASS_UNITS:
            klass = parent
        parent = parent.parent
    return klass


def _own_line_comment(text: str, start: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    return not text[line_start:start].strip()


def find_placeholders(text: str, language_id: str) -> list[Placeholder]:
    """Every placeholder inside a function or class, in document order.

    A TODO comment on its own line is a hole just after it (the comment stays: it says what to
    write); one directly above another placeholder is not a hole of its own.
    """
    grammar, tree = grammar_of(language_id), parse(text, language_id)
    if grammar is None or tree is None:
        return []
    data = text.encode("utf-8", "surrogatepass")
    found: list[Placeholder] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error:
            continue  # broken code is the repair canvas's
        stack.extend(reversed(node.children))
        hit = _kind(node, grammar)
        comment = hit is None and "comment" in node.type and TODO_WORDS.search(_text(node))
        if hit is None and not comment:
            continue
        unit = _unit_of(node)
        if unit is None:
            continue
        target = node if hit is None else hit[1]
        start = offset_of_byte(data, target.start_byte)
        end = offset_of_byte(data, target.end_byte)
        if hit is None:
            if not _own_line_comment(text, start) or "\n" in text[start:end].rstrip("\n"):
                continue  # a trailing or multi-line comment is a remark, not a hole
            start = end  # the hole is after the comment
        line_start = text.rfind("\n", 0, start) + 1
        column = len(text[line_start:start]) - len(text[line_start:start].lstrip(" \t"))
        if hit is None:
            column = offset_of_byte(data, node.start_byte) - line_start
        found.append(
            Placeholder(
                kind=hit[0] if hit is not None else "todo_comment",
                start=start,
                end=end,
                unit_start=offset_of_byte(data, unit.start_byte),
                unit_end=offset_of_byte(data, unit.end_byte),
                unit=unit.type,
                column=column,
            )
        )
    found.sort(key=lambda p: (p.start, p.end))
    # A TODO comment right above a placeholder is that placeholder's note, not a second hole.
    kept: list[Placeholder] = []
    for p in found:
        if kept and kept[-1].kind == "todo_comment" and not text[kept[-1].end : p.start].strip():
            kept.pop()
        if kept and p.start < kept[-1].end:
            continue  # nested (a `...` inside a `raise`): the outer one is the hole
        kept.append(p)
    return kept
