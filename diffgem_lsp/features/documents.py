"""didOpen / didChange / didClose: syntax diagnostics (debounced), typing speed, the suggestion cache,
and the prompt-cache warm-up (prefill.py).

Main-loop notifications (pygls has already updated its copy of the document when these run). The
diagnostics are tree-sitter ERROR/MISSING nodes (canvas/repair.py); no model runs here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from lsprotocol import types

from .. import canvas as C
from .. import prefill, results
from ..backends import prefiller
from ..debounce import AdaptiveDebounce
from ..session import Session

log = logging.getLogger("diffgem.documents")

# Diagnostics wait for a pause in typing: a half-typed line is always "broken", and flagging it
# on every keystroke is noise (pyright and rust-analyzer also publish after edits settle).
DIAGNOSTICS_DELAY_S = 0.4


def did_open(session: Session, params: types.DidOpenTextDocumentParams) -> None:
    _schedule_diagnostics(session, params.text_document.uri, delay=0.0)
    prefill.did_open(session, params.text_document.uri)


def did_change(session: Session, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    session.typing.setdefault(uri, AdaptiveDebounce()).observe(time.monotonic())
    _schedule_diagnostics(session, uri, delay=DIAGNOSTICS_DELAY_S)
    if session.settings.prefill and prefiller(session.backend) is not None:
        prefill.did_change(session, uri, params.content_changes)
    else:
        # No warm-up will be sent (a remote backend, or the setting off), so skip its bookkeeping:
        # for a whole-document change it diffs the old text against the new one in Python, several
        # ms for a 20 KB file on every keystroke (bench/backends.py remote overhead). The text is
        # dropped, not kept stale: after a switch to a prefilling backend the next change is not
        # diffed against an old version.
        session.prefill_texts.pop(uri, None)


def did_close(session: Session, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    session.typing.pop(uri, None)
    session.suggestions.forget(uri)
    prefill.did_close(session, uri)
    pending = session.pending_diagnostics.pop(uri, None)
    if pending is not None:
        pending.cancel()
    if session.settings.diagnostics:
        session.client.notify(
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, results.diagnostics(uri, None, [])
        )


def _schedule_diagnostics(session: Session, uri: str, delay: float) -> None:
    if not session.settings.diagnostics:
        return
    pending = session.pending_diagnostics.pop(uri, None)
    if pending is not None:
        pending.cancel()
    session.pending_diagnostics[uri] = asyncio.ensure_future(_publish(session, uri, delay))


async def _publish(session: Session, uri: str, delay: float) -> None:
    if delay:
        await asyncio.sleep(delay)
    doc = session.client.workspace.text_documents.get(uri)
    if doc is None or session.too_big_or_binary(doc) is not None:
        return
    text = doc.source
    found = [
        C.SyntaxDiagnostic(
            C.from_utf16_position(text, d.start, session.position_encoding),
            C.from_utf16_position(text, d.end, session.position_encoding),
            d.message,
        )
        for d in C.syntax_diagnostics(text, doc.language_id or "")
    ]
    if session.pending_diagnostics.get(uri) is asyncio.current_task():
        del session.pending_diagnostics[uri]
    log.debug("%s: %d syntax diagnostics", uri, len(found))
    session.client.notify(
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, results.diagnostics(uri, doc.version, found)
    )
