"""textDocument/inlineCompletion: ghost text at the cursor, filled from the text before and after it.

Background: runs as an asyncio task per request; a newer request for the same document cancels the older
one (and with it the backend's denoising), so only the latest keystroke costs model time. A document
state seen before, or typing that matches the suggestion shown, is answered from the session's
suggestion cache without the model (suggest_cache.py). Invoked requests return up to `candidates`
distinct suggestions (edit_pipelines.infill_candidates); automatic ones return one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lsprotocol import types

from .. import canvas as C
from .. import edit_pipelines, pipelines, results
from ..session import Session
from ..suggest_cache import Suggestion

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
        items = await _items(session, params, automatic)
    finally:
        session.finished(uri, task)
    return results.inline_list(items)


def _cursor(session: Session, uri: str, pos: types.Position) -> tuple[str, int] | None:
    """The document's text and the cursor's str offset (None for a position past the end)."""
    text = session.document(uri).source
    try:
        # Straight from the client's encoding to the offset (what a round trip through UTF-16
        # gives), one conversion instead of three: each walks the document's lines in Python.
        encoding = C.normalize_encoding(session.position_encoding)
        return text, C.offset_at(text, C.Position(pos.line, pos.character), encoding)
    except C.PositionError:
        return None  # the pipeline answers it with a clear InvalidParams error


def _shown(pos: types.Position, suggestion: Suggestion) -> types.InlineCompletionItem:
    end = types.Position(line=pos.line, character=pos.character + suggestion.replace_chars)
    return results.inline_item_over(suggestion.insert_text, types.Range(start=pos, end=end))


async def _items(
    session: Session, params: types.InlineCompletionParams, automatic: bool
) -> list[types.InlineCompletionItem]:
    pos = params.position
    uri = params.text_document.uri
    selected = params.context.selected_completion_info
    if selected is not None:
        # LSP 3.18: with a completion popup item selected, the ghost text must extend that item over
        # the same range — so fill as if the item were already inserted, then prepend it.
        item = await _extend_selected(session, params, selected, automatic)
        return [item] if item else []
    cursor = _cursor(session, uri, pos)
    k = 1 if automatic else session.settings.candidates
    if cursor is not None:
        cached = session.suggestions.lookup(uri, *cursor)
        if cached and (automatic or len(cached) >= k):
            return [_shown(pos, s) for s in cached[: max(k, 1)]]
    if k > 1:
        fills = await edit_pipelines.infill_candidates(session, uri, pos.line, pos.character, k)
    else:
        fill = await pipelines.infill(
            session,
            uri,
            pos.line,
            pos.character,
            automatic=automatic,
            on_draft=_draft_reporter(session, params),
        )
        fills = [fill] if fill is not None else []
    if cursor is not None and session.document(uri).source == cursor[0]:
        session.suggestions.store(
            uri,
            *cursor,
            [Suggestion(f.insert_text, f.end_character - f.start_character) for f in fills],
        )
    return [results.inline_item(f) for f in fills]


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
