"""textDocument/codeAction + codeAction/resolve: "Rewrite selection" (refactor.rewrite).

Listing runs on the main loop and is instant (no model call); the model runs only when the client
resolves the action (background). Clients without resolve support for `edit` get a command that applies
the edit through workspace/applyEdit (see commands.py).
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from .. import pipelines, results
from ..session import Session

OPTIONS = types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.RefactorRewrite], resolve_provider=True
)


def _resolves_edits(session: Session) -> bool:
    caps = session.client.capabilities()
    document = caps.text_document if caps else None
    action = document.code_action if document else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def _parse_target(data: Any) -> tuple[str, tuple[int, int], tuple[int, int], int | None]:
    try:
        rng = data["range"]
        return (
            str(data["uri"]),
            (int(rng["start"]["line"]), int(rng["start"]["character"])),
            (int(rng["end"]["line"]), int(rng["end"]["character"])),
            data.get("version"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(f"diffgem: malformed rewrite target: {exc}") from exc


async def run_rewrite(
    session: Session, data: Any
) -> types.WorkspaceEdit | pipelines.NoRewrite | None:
    uri, start, end, version = _parse_target(data)
    rewrite = await pipelines.rewrite(session, uri, start, end, version)
    if isinstance(rewrite, pipelines.NoRewrite):
        return rewrite
    return results.workspace_edit(uri, rewrite) if rewrite else None


def code_action(session: Session, params: types.CodeActionParams) -> list[types.CodeAction]:
    rng = params.range
    if rng.start == rng.end:
        return []
    only = params.context.only
    if only and not any(types.CodeActionKind.RefactorRewrite.value.startswith(k) for k in only):
        return []
    doc = session.document(params.text_document.uri)
    data = {
        "uri": params.text_document.uri,
        "range": {
            "start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character},
        },
        "version": doc.version,
    }
    return [results.rewrite_action(data, with_command=not _resolves_edits(session))]


async def code_action_resolve(session: Session, action: types.CodeAction) -> types.CodeAction:
    edit = await run_rewrite(session, action.data)
    if isinstance(edit, pipelines.NoRewrite):
        action.disabled = results.kept_as_is(edit.reason)
    elif edit is None:
        action.disabled = results.kept_as_is()
    else:
        action.edit = edit
    return action
