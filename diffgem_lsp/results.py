"""LSP result types built from the pipelines' plain results: inline items, completion items, edits, actions.

The one module (besides the transport's registration) that constructs lsprotocol types; it does no I/O
and asks no model, so every conversion here is testable alone.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from . import canvas as C
from .pipelines import Infill, Rewrite

REWRITE_TITLE = "Rewrite selection"
APPLY_REWRITE_COMMAND = "diffgem.applyRewrite"
COMPLETION_LABEL_CHARS = 60


def lsp_range(start: C.Position, end: C.Position) -> types.Range:
    return types.Range(
        start=types.Position(line=start.line, character=start.character),
        end=types.Position(line=end.line, character=end.character),
    )


def infill_range(fill: Infill) -> types.Range:
    return lsp_range(
        C.Position(fill.line, fill.start_character), C.Position(fill.line, fill.end_character)
    )


def inline_list(items: list[types.InlineCompletionItem]) -> types.InlineCompletionList:
    return types.InlineCompletionList(items=items)


def inline_item(fill: Infill) -> types.InlineCompletionItem:
    return types.InlineCompletionItem(insert_text=fill.insert_text, range=infill_range(fill))


def inline_item_over(text: str, rng: types.Range) -> types.InlineCompletionItem:
    """An item over a given range (LSP 3.18: extending the completion item selected in a popup)."""
    return types.InlineCompletionItem(insert_text=text, range=rng)


def completion_list(fill: Infill | None) -> types.CompletionList:
    """One completion item from an infill. isIncomplete: the client asks again as the user types,
    rather than filtering this one item."""
    if fill is None:
        return types.CompletionList(is_incomplete=True, items=[])
    text = fill.insert_text.strip()
    first_line = text.splitlines()[0] if text else ""
    cut = len(first_line) > COMPLETION_LABEL_CHARS or "\n" in text
    item = types.CompletionItem(
        label=first_line[:COMPLETION_LABEL_CHARS] + ("…" if cut else ""),
        kind=types.CompletionItemKind.Snippet,
        detail="diffgem",
        # Plain text: a completion preview shows it as is (Neovim's popup printed the fences).
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=fill.insert_text),
        text_edit=types.TextEdit(range=infill_range(fill), new_text=fill.insert_text),
        insert_text_format=types.InsertTextFormat.PlainText,
        filter_text="",
        sort_text="0",
        preselect=True,
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def workspace_edit(uri: str, rewrite: Rewrite) -> types.WorkspaceEdit:
    """The rewrite's edits (already in the client's position encoding) as one WorkspaceEdit; versioned
    documentChanges when the document version is known, so a stale edit is refused by the client."""
    edits = [
        types.TextEdit(range=lsp_range(e.start, e.end), new_text=e.new_text) for e in rewrite.edits
    ]
    if rewrite.version is None:
        return types.WorkspaceEdit(changes={uri: edits})
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=rewrite.version
                ),
                edits=edits,
            )
        ]
    )


def rewrite_action(data: dict[str, Any], *, with_command: bool) -> types.CodeAction:
    """The listed "Rewrite selection" action: no edit yet (resolve computes it), or a command for
    clients that cannot resolve `edit`."""
    action = types.CodeAction(
        title=REWRITE_TITLE, kind=types.CodeActionKind.RefactorRewrite, data=data
    )
    if with_command:
        action.command = types.Command(
            title=REWRITE_TITLE, command=APPLY_REWRITE_COMMAND, arguments=[data]
        )
    return action


HOLES_TITLE = "Fill the holes"
REPAIR_TITLE = "Repair syntax"
DIAGNOSTIC_SOURCE = "diffgem"


def holes_action(data: dict[str, Any], *, with_command: bool) -> types.CodeAction:
    """ "Fill the holes" of the units at the range: resolved (or run by command) like a rewrite."""
    action = types.CodeAction(
        title=HOLES_TITLE, kind=types.CodeActionKind.RefactorRewrite, data=data
    )
    if with_command:
        action.command = types.Command(
            title=HOLES_TITLE, command=APPLY_REWRITE_COMMAND, arguments=[data]
        )
    return action


def repair_action(
    data: dict[str, Any], diagnostics: list[types.Diagnostic], *, with_command: bool
) -> types.CodeAction:
    """The "Repair syntax" quick fix for the syntax diagnostics at the range."""
    action = types.CodeAction(
        title=REPAIR_TITLE,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=diagnostics or None,
        data=data,
    )
    if with_command:
        action.command = types.Command(
            title=REPAIR_TITLE, command=APPLY_REWRITE_COMMAND, arguments=[data]
        )
    return action


def no_repair() -> types.CodeActionDisabled:
    return types.CodeActionDisabled(reason="no candidate made the file parse")


def diagnostics(
    uri: str, version: int | None, found: list[C.SyntaxDiagnostic]
) -> types.PublishDiagnosticsParams:
    """Syntax diagnostics (positions already in the client's encoding) for publishDiagnostics."""
    return types.PublishDiagnosticsParams(
        uri=uri,
        version=version,
        diagnostics=[
            types.Diagnostic(
                range=lsp_range(d.start, d.end),
                message=d.message,
                severity=types.DiagnosticSeverity.Error,
                source=DIAGNOSTIC_SOURCE,
            )
            for d in found
        ],
    )


def kept_as_is(reason: str = "the model kept the selection as it is") -> types.CodeActionDisabled:
    return types.CodeActionDisabled(reason=reason)


def show_message(message: str, kind: types.MessageType) -> types.ShowMessageParams:
    return types.ShowMessageParams(type=kind, message=message)


def apply_edit(edit: types.WorkspaceEdit, label: str) -> types.ApplyWorkspaceEditParams:
    return types.ApplyWorkspaceEditParams(edit=edit, label=label)


def progress_begin(title: str, message: str) -> types.WorkDoneProgressBegin:
    return types.WorkDoneProgressBegin(title=title, message=message)


def progress_report(message: str) -> types.WorkDoneProgressReport:
    return types.WorkDoneProgressReport(message=message)


def progress_end(message: str) -> types.WorkDoneProgressEnd:
    return types.WorkDoneProgressEnd(message=message)
