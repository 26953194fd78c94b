"""textDocument/codeAction + codeAction/resolve: "Rewrite selection" (refactor.rewrite).

Listing is instant (no model call); the model runs only when the client resolves the action. Clients
without resolve support for `edit` get a command that applies the edit through workspace/applyEdit.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from .. import pipelines
from ..server import DiffgemServer

REWRITE_TITLE = "Rewrite selection"
APPLY_REWRITE_COMMAND = "diffgem.applyRewrite"


def _resolves_edits(ls: DiffgemServer) -> bool:
    caps = ls.client_capabilities.text_document
    action = caps.code_action if caps else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def workspace_edit(uri: str, rewrite: pipelines.Rewrite) -> types.WorkspaceEdit:
    edits = [
        types.TextEdit(
            range=types.Range(
                start=types.Position(line=e.start.line, character=e.start.character),
                end=types.Position(line=e.end.line, character=e.end.character),
            ),
            new_text=e.new_text,
        )
        for e in rewrite.edits
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


async def run_rewrite(ls: DiffgemServer, data: Any) -> types.WorkspaceEdit | None:
    uri, start, end, version = _parse_target(data)
    rewrite = await pipelines.rewrite(ls, uri, start, end, version)
    return workspace_edit(uri, rewrite) if rewrite else None


def register(server: DiffgemServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.RefactorRewrite], resolve_provider=True
        ),
    )
    def code_action(ls: DiffgemServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        rng = params.range
        if rng.start == rng.end:
            return []
        only = params.context.only
        if only and not any(types.CodeActionKind.RefactorRewrite.value.startswith(k) for k in only):
            return []
        doc = ls.document(params.text_document.uri)
        data = {
            "uri": params.text_document.uri,
            "range": {
                "start": {"line": rng.start.line, "character": rng.start.character},
                "end": {"line": rng.end.line, "character": rng.end.character},
            },
            "version": doc.version,
        }
        action = types.CodeAction(
            title=REWRITE_TITLE, kind=types.CodeActionKind.RefactorRewrite, data=data
        )
        if not _resolves_edits(ls):
            action.command = types.Command(
                title=REWRITE_TITLE, command=APPLY_REWRITE_COMMAND, arguments=[data]
            )
        return [action]

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: DiffgemServer, action: types.CodeAction) -> types.CodeAction:
        edit = await run_rewrite(ls, action.data)
        if edit is None:
            action.disabled = types.CodeActionDisabled(
                reason="the model kept the selection as it is"
            )
        else:
            action.edit = edit
        return action
