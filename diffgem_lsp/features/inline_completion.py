"""textDocument/inlineCompletion: ghost text at the cursor, filled from the text before and after it.

Runs as an asyncio task per request; a newer automatic request for the same document cancels the older
one (and with it the worker's denoising), so only the latest keystroke costs model time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lsprotocol import types

from .. import pipelines
from ..server import DiffgemServer

DRAFT_NOTIFICATION = "diffgem/draft"


def register(server: DiffgemServer) -> None:
    # Registered with options, or pygls never advertises the capability (REFERENCE.md, pygls 2.1.1).
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: DiffgemServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        if automatic and not ls.settings.automatic_suggestions:
            return types.InlineCompletionList(items=[])
        uri = params.text_document.uri
        previous = ls.inflight.pop(uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.current_task()
        assert task is not None
        ls.inflight[uri] = task
        try:
            item = await _item(ls, params, automatic)
        finally:
            if ls.inflight.get(uri) is task:
                del ls.inflight[uri]
        return types.InlineCompletionList(items=[item] if item else [])


async def _item(
    ls: DiffgemServer, params: types.InlineCompletionParams, automatic: bool
) -> types.InlineCompletionItem | None:
    pos = params.position
    selected = params.context.selected_completion_info
    if selected is not None:
        # LSP 3.18: with a completion popup item selected, the ghost text must extend that item over
        # the same range — so fill as if the item were already inserted, then prepend it.
        return await _extend_selected(ls, params, selected, automatic)
    fill = await pipelines.infill(
        ls,
        params.text_document.uri,
        pos.line,
        pos.character,
        automatic=automatic,
        on_draft=_draft_reporter(ls, params),
    )
    if fill is None:
        return None
    return types.InlineCompletionItem(
        insert_text=fill.insert_text,
        range=types.Range(
            start=types.Position(line=fill.line, character=fill.start_character),
            end=types.Position(line=fill.line, character=fill.end_character),
        ),
    )


def _draft_reporter(
    ls: DiffgemServer, params: types.InlineCompletionParams
) -> Callable[[str], None] | None:
    """Intermediate canvases for clients that show the draft forming (streamDrafts setting)."""
    token = params.work_done_token
    if not ls.settings.stream_drafts:
        return None

    def report(text: str) -> None:
        ls.protocol.notify(
            DRAFT_NOTIFICATION,
            {
                "uri": params.text_document.uri,
                "line": params.position.line,
                "character": params.position.character,
                "text": text,
            },
        )
        if token is not None:
            ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=text))

    return report


async def _extend_selected(
    ls: DiffgemServer,
    params: types.InlineCompletionParams,
    selected: types.SelectedCompletionInfo,
    automatic: bool,
) -> types.InlineCompletionItem | None:
    rng = selected.range
    if rng.start.line != rng.end.line or rng.end != params.position:
        return None
    doc = ls.document(params.text_document.uri)
    line_text = doc.lines[rng.start.line] if rng.start.line < len(doc.lines) else ""
    typed = line_text[rng.start.character : rng.end.character]
    if not selected.text.startswith(typed):
        return None
    fill = await pipelines.infill(
        ls,
        params.text_document.uri,
        params.position.line,
        params.position.character,
        automatic=automatic,
        prefix_extra=selected.text[len(typed) :],
    )
    if fill is None or not fill.insert_text.startswith(selected.text[len(typed) :]):
        return None
    return types.InlineCompletionItem(insert_text=typed + fill.insert_text, range=rng)
