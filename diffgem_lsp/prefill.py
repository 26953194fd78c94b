"""Prompt-cache warm-up: on didOpen/didChange, encode the prompt the next inline request will send.

Boundary: builds that prompt through `pipelines.infill_request` (the same canvas, prefix, suffix and
cross-file header, so the worker's cache key is the request's) and hands it to the backend's optional
`prefill` (backends/base.py `prefiller`); nothing reaches the client. Best effort and in the
background: one task per document, superseded by the next change, cancelled when a real request for
the document starts (session.supersede), and dropped by the worker while any request waits behind it
(model/worker.py `Worker.prefill`), so a suggestion never waits for a warm-up.

Where the cursor will be. The `fim` layout puts the suffix first (model/layouts.py `fim_prompt`), so a
cached prompt only helps a request whose text after the cursor is the same, i.e. typing at or just
after the prefilled cursor.
- didChange: the end of the change, where the cursor is after typing or pasting: the last change's
  range start plus its text (incremental sync, what the server asks for); for a whole-document change
  (no range) a diff of the text before and after, which cannot tell where a key that repeats its
  neighbour went and takes the later place.
- didOpen: where this document's last change ended if it was edited earlier in this session (editors
  reopen a file at its last cursor), else the end of the last line of code: appending below the
  existing code is where new code goes in a file just opened (a new file, a test file, a script), and
  Enter or typing there keeps the suffix, so nearly the whole prompt is reused. A line the infill
  canvas refuses (a comment) is skipped for the one above it.

When. A warm-up waits PREFILL_DELAY_S first: an editor that asks for ghost text on every keystroke
sends its request right behind the didChange, and that request (which cancels the waiting warm-up,
session.supersede) encodes the same prompt itself; sending both would only make it wait for an encode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from lsprotocol import types

from . import canvas as C
from . import pipelines
from .backends import BackendError, prefiller
from .session import Session

log = logging.getLogger("diffgem.prefill")

# A request following its didChange within this long makes the warm-up moot (see "When" above); far
# below the pause before a user reads or types on after a change.
PREFILL_DELAY_S = 0.05
# A warm-up still out after this long is given up (an older worker never answers the op).
PREFILL_TIMEOUT_S = 30.0
# didOpen: how many lines up from the end to look for one the infill canvas accepts.
OPEN_SEARCH_LINES = 40
# Last-change offsets remembered for reopened documents (oldest forgotten first).
REMEMBERED_DOCUMENTS = 256


def change_end(old: str, new: str) -> int:
    """Offset in `new` where the edit from `old` ends: after the common prefix, before the common
    suffix (an insertion ends after the inserted text; a deletion at the place it was)."""
    n = min(len(old), len(new))
    start = 0
    while start < n and old[start] == new[start]:
        start += 1
    end = 0
    while end < n - start and old[len(old) - 1 - end] == new[len(new) - 1 - end]:
        end += 1
    return len(new) - end


def open_offsets(text: str) -> list[int]:
    """didOpen cursor candidates, best first: the ends of the last non-blank lines, bottom up."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found = []
    for row in range(len(lines) - 1, -1, -1):
        if lines[row].strip():
            found.append(starts[row] + len(lines[row].rstrip("\r")))
            if len(found) == OPEN_SEARCH_LINES:
                break
    return found or [0]


def did_open(session: Session, uri: str) -> None:
    doc = session.client.workspace.text_documents.get(uri)
    if doc is None:
        return
    text = doc.source
    session.prefill_texts[uri] = text
    remembered = session.last_change.get(uri)
    candidates = open_offsets(text)
    if remembered is not None and remembered <= len(text):
        candidates.insert(0, remembered)
    schedule(session, uri, text, candidates)


def did_change(
    session: Session, uri: str, changes: Sequence[types.TextDocumentContentChangeEvent] = ()
) -> None:
    doc = session.client.workspace.text_documents.get(uri)
    if doc is None:
        return
    text = doc.source
    old = session.prefill_texts.get(uri)
    session.prefill_texts[uri] = text
    if old == text:
        return
    offset = _range_end(session, text, changes[-1]) if changes else None
    if offset is None:
        if old is None:
            return
        offset = change_end(old, text)
    session.last_change.pop(uri, None)  # re-insert: most recent last
    session.last_change[uri] = offset
    while len(session.last_change) > REMEMBERED_DOCUMENTS:
        del session.last_change[next(iter(session.last_change))]
    schedule(session, uri, text, [offset])


def _range_end(
    session: Session, text: str, change: types.TextDocumentContentChangeEvent
) -> int | None:
    """Offset in the new `text` where an incremental change ends (None: a whole-document change).
    The text before the range start is the same before and after the change, so the start resolves
    in the new text."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return None
    start = change.range.start
    try:
        utf16 = C.to_utf16_position(
            text, C.Position(start.line, start.character), session.position_encoding
        )
        return min(len(text), C.offset_at(text, utf16) + len(change.text))
    except C.PositionError:
        return None


def did_close(session: Session, uri: str) -> None:
    cancel(session, uri)
    session.prefill_texts.pop(uri, None)


def cancel(session: Session, uri: str) -> None:
    pending = session.prefills.pop(uri, None)
    if pending is not None:
        pending.cancel()  # a timer not yet fired, or the warm-up task (a no-op once it is done)


def schedule(session: Session, uri: str, text: str, offsets: list[int]) -> None:
    """Warm the cache for the first of `offsets` that gets an infill canvas; replaces any warm-up
    still out for this document."""
    cancel(session, uri)
    if not session.settings.prefill or prefiller(session.backend) is None:
        return
    # A timer, not a task per keystroke: a cancelled TimerHandle drops its arguments at once
    # (asyncio/events.py, `Handle.cancel`), whereas a task per didChange kept that version of the
    # text alive until the loop got round to running its cancellation — under a burst of changes,
    # thousands of copies of a growing document (server RSS grew ~2 KB per keystroke).
    loop = asyncio.get_running_loop()
    session.prefills[uri] = loop.call_later(PREFILL_DELAY_S, _start, session, uri, text, offsets)


def _start(session: Session, uri: str, text: str, offsets: list[int]) -> None:
    task = asyncio.ensure_future(_run(session, uri, text, offsets))
    session.prefills[uri] = task
    task.add_done_callback(lambda t: session.prefills.get(uri) is t and session.prefills.pop(uri))


async def _run(session: Session, uri: str, text: str, offsets: list[int]) -> None:
    doc = session.client.workspace.text_documents.get(uri)
    if doc is None or doc.source != text or session.too_big_or_binary(doc) is not None:
        return
    language = doc.language_id or ""
    for offset in offsets:
        request = pipelines.infill_request(
            session, uri, text, language, C.position_at(text, offset), automatic=True
        )
        if request is not None:
            break
    else:
        return
    backend = prefiller(session.backend)
    if backend is None:
        return
    try:
        event = await asyncio.wait_for(backend.prefill(request[1]), PREFILL_TIMEOUT_S)
    except (BackendError, TimeoutError) as exc:
        log.debug("prefill %s: %s", uri, exc)
        return
    log.debug(
        "prefill %s at %s: %s prompt tokens encoded, %s reused, %.0f ms",
        uri,
        request[0].position,
        event.get("encoded_tokens"),
        event.get("reused_tokens"),
        event.get("encode_ms", 0.0),
    )
