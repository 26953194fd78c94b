"""textDocument/completion: one item built from the same infill, for clients without inline completion.

Helix, Neovim 0.11 and eglot show it in their completion popup; the item's textEdit inserts at the
cursor (and replaces the same text after it that the ghost text would).
"""

from __future__ import annotations

from lsprotocol import types

from .. import pipelines
from ..server import DiffgemServer


def register(server: DiffgemServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "])
    )
    async def completion(ls: DiffgemServer, params: types.CompletionParams) -> types.CompletionList:
        automatic = (
            params.context is not None
            and params.context.trigger_kind != types.CompletionTriggerKind.Invoked
        )
        pos = params.position
        fill = await pipelines.infill(
            ls, params.text_document.uri, pos.line, pos.character, automatic=automatic
        )
        # isIncomplete: the client asks again as the user types, rather than filtering this one item.
        if fill is None:
            return types.CompletionList(is_incomplete=True, items=[])
        first_line = fill.insert_text.strip().splitlines()[0] if fill.insert_text.strip() else ""
        rng = types.Range(
            start=types.Position(line=fill.line, character=fill.start_character),
            end=types.Position(line=fill.line, character=fill.end_character),
        )
        item = types.CompletionItem(
            label=first_line[:60]
            + ("…" if len(first_line) > 60 or "\n" in fill.insert_text.strip() else ""),
            kind=types.CompletionItemKind.Snippet,
            detail="diffgem",
            documentation=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=f"```\n{fill.insert_text}\n```"
            ),
            text_edit=types.TextEdit(range=rng, new_text=fill.insert_text),
            insert_text_format=types.InsertTextFormat.PlainText,
            filter_text="",
            sort_text="0",
            preselect=True,
        )
        return types.CompletionList(is_incomplete=True, items=[item])
