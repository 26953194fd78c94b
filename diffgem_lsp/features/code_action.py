"""textDocument/codeAction + codeAction/resolve: "Rewrite selection", "Fill the holes", "Repair syntax".

Listing runs on the main loop and is instant (no model call); the model runs only when the client
resolves the action (background). Clients without resolve support for `edit` get a command that applies
the edit through workspace/applyEdit (see commands.py). "Rewrite selection…" (with an instruction) is a
command only: the editor asks the user for the words, then runs it (instructions.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from .. import canvas as C
from .. import edit_pipelines, instructions, pipelines, results
from ..session import Session

OPTIONS = types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix],
    resolve_provider=True,
)


def _resolves_edits(session: Session) -> bool:
    caps = session.client.capabilities()
    document = caps.text_document if caps else None
    action = document.code_action if document else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def parse_target(data: Any) -> tuple[str, tuple[int, int], tuple[int, int], int | None]:
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
    """The edit of a listed action: a rewrite, or (by `data["action"]`) holes filled or a repair."""
    uri, start, end, version = parse_target(data)
    action = data.get("action")
    rewrite: pipelines.Rewrite | pipelines.NoRewrite | None
    if action == "holes":
        rewrite = await edit_pipelines.fill_holes(session, uri, start, end, version)
    elif action == "repair":
        rewrite = await edit_pipelines.repair(session, uri, *start, version)
    else:
        rewrite = await pipelines.rewrite(session, uri, start, end, version)
    if isinstance(rewrite, pipelines.NoRewrite):
        return rewrite
    return results.workspace_edit(uri, rewrite) if rewrite else None


def _wanted(only: Sequence[types.CodeActionKind | str] | None, kind: types.CodeActionKind) -> bool:
    return not only or any(kind.value.startswith(str(getattr(k, "value", k))) for k in only)


def code_action(session: Session, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Instant listing (no model): tree-sitter says whether holes or syntax errors are at the range."""
    rng = params.range
    only = params.context.only
    doc = session.document(params.text_document.uri)
    data = {
        "uri": params.text_document.uri,
        "range": {
            "start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character},
        },
        "version": doc.version,
    }
    command = not _resolves_edits(session)
    actions = []
    if rng.start != rng.end and _wanted(only, types.CodeActionKind.RefactorRewrite):
        actions.append(results.rewrite_action(data, with_command=command))
        if _instruction_offered(session):
            actions.append(_instruction_action(data))
    if session.too_big_or_binary(doc) is not None:
        return actions
    text, language = doc.source, doc.language_id or ""
    try:
        encoding = session.position_encoding
        first = C.to_utf16_position(text, C.Position(rng.start.line, rng.start.character), encoding)
        last = C.to_utf16_position(text, C.Position(rng.end.line, rng.end.character), encoding)
    except C.PositionError:
        return actions
    if _wanted(only, types.CodeActionKind.RefactorRewrite) and C.build_multihole_canvases(
        text, language, first, last
    ):
        actions.append(results.holes_action(data | {"action": "holes"}, with_command=command))
    if _wanted(only, types.CodeActionKind.QuickFix) and C.build_repair_canvases(
        text, language, first
    ):
        ours = [d for d in params.context.diagnostics if d.source == results.DIAGNOSTIC_SOURCE]
        actions.append(
            results.repair_action(data | {"action": "repair"}, ours, with_command=command)
        )
    return actions


def _instruction_offered(session: Session) -> bool:
    """Listed only for a model that follows instructions and a client that can ask for one."""
    return instructions.takes_instructions(session.backend) and instructions.client_prompts(
        session.client.capabilities()
    )


def _instruction_action(data: dict[str, Any]) -> types.CodeAction:
    """ "Rewrite selection…": a command, no `data` to resolve. The editor asks for the instruction and
    runs the command with `instruction` added to the target (commands.rewrite_with_instruction)."""
    return types.CodeAction(
        title=instructions.TITLE,
        kind=types.CodeActionKind.RefactorRewrite,
        command=types.Command(
            title=instructions.TITLE, command=instructions.COMMAND, arguments=[data]
        ),
    )


async def code_action_resolve(session: Session, action: types.CodeAction) -> types.CodeAction:
    if action.data is None and action.command is not None:
        return action  # a command-only action ("Rewrite selection…"): nothing to resolve
    edit = await run_rewrite(session, action.data)
    if isinstance(edit, pipelines.NoRewrite):
        action.disabled = results.kept_as_is(edit.reason)
    elif edit is None:
        repair = isinstance(action.data, dict) and action.data.get("action") == "repair"
        action.disabled = results.no_repair() if repair else results.kept_as_is()
    else:
        action.edit = edit
    return action
