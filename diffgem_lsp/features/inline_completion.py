"""textDocument/inlineCompletion: ghost text at the cursor, filled from the text before and after it.

Background: runs as an asyncio task per request; a newer request for the same document cancels the older
one (and with it the backend's denoising), so only the latest keystroke costs model time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lsprotocol import types

from .. import pipelines, results
from ..session import Session

DRAFT_NOTIFICATION = "diffgem/draft"
# Registered with options, or pygls 2.1.1 never advertises the capability: its
# ServerCapabilitiesBuilder sets `inline_completion_provider` only from registered options
# (pygls/capabilities.py, `_with_inline_completion_provider`).
OPTIONS = types.InlineCompletionOptions()


async def inline_completion(
    session: Session, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    if automatic and not session.settings.automatic_suggestions:
        return results.inline_list([])
    uri = params.text_document.uri
    task = asyncio.current_task()
    assert task is not None
    session.supersede(uri, task)
    try:
        item = await _item(session, params, automatic)
    finally:
        session.finished(uri, task)
    return results.inline_list([item] if item else [])


async def _item(
    session: Session, params: types.InlineCompletionParams, automatic: bool
) -> types.InlineCompletionItem | None:
    pos = params.position
    selected = params.context.selected_completion_info
    if selected is not None:
        # LSP 3.18: with a completion popup item selected, the ghost text must extend that item over
        # the same range — so fill as if the item were already inserted, then prepend it.
        return await _extend_selected(session, params, selected, automatic)
    fill = await pipelines.infill(
        session,
        params.text_document.uri,
        pos.line,
        pos.character,
        automatic=automatic,
        on_draft=_draft_reporter(session, params),
    )
    return results.inline_item(fill) if fill is not None else None


def _draft_reporter(
    session: Session, params: types.InlineCompletionParams
) -> Callable[[str], None] | None:
    """Intermediate canvases for clients that show the draft forming (streamDrafts setting)."""
    token = params.work_done_token
    if not session.settings.stream_drafts:
        return None

    def report(text: str) -> None:
        session.client.notify(
            DRAFT_NOTIFICATION,
            {
                "uri": params.text_document.uri,
                "line": params.position.line,
                "character": params.position.character,
                "text": text,
            },
        )
        if token is not None:
            session.client.report_progress(token, text)

    return report


async def _extend_selected(
    session: Session,
    params: types.InlineCompletionParams,
    selected: types.SelectedCompletionInfo,
    automatic: bool,
) -> types.InlineCompletionItem | None:
    rng = selected.range
    if rng.start.line != rng.end.line or rng.end != params.position:
        return None
    doc = session.document(params.text_document.uri)
    line_text = doc.lines[rng.start.line] if rng.start.line < len(doc.lines) else ""
    typed = line_text[rng.start.character : rng.end.character]
    if not selected.text.startswith(typed):
        return None
    fill = await pipelines.infill(
        session,
        params.text_document.uri,
        params.position.line,
        params.position.character,
        automatic=automatic,
        prefix_extra=selected.text[len(typed) :],
    )
    if fill is None or not fill.insert_text.startswith(selected.text[len(typed) :]):
        return None
    return results.inline_item_over(typed + fill.insert_text, rng)
