"""textDocument/completion: one item built from the same infill, for clients without inline completion.

Helix, Neovim 0.11 and eglot show it in their completion popup; the item's textEdit inserts at the
cursor (and replaces the same text after it that the ghost text would). Background: asks the model.
"""

from __future__ import annotations

from lsprotocol import types

from .. import pipelines, results
from ..session import Session

OPTIONS = types.CompletionOptions(trigger_characters=[".", "(", " "])


async def completion(session: Session, params: types.CompletionParams) -> types.CompletionList:
    automatic = (
        params.context is not None
        and params.context.trigger_kind != types.CompletionTriggerKind.Invoked
    )
    pos = params.position
    fill = await pipelines.infill(
        session, params.text_document.uri, pos.line, pos.character, automatic=automatic
    )
    return results.completion_list(fill)
