"""A minimal LSP client that drives `diffgem-lsp` the way an editor does (the demo, `make bench`, tests).

Not part of the server package: it starts the real server as a subprocess over stdio and imports only the
pure canvas positions (UTF-16 columns) from it; nothing here imports torch.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from diffgem_lsp.canvas import Position, offset_at, position_at

HOLE = "⟨⟩"


@dataclass(frozen=True)
class Hole:
    """A file with one hole marker, split into text (marker removed) and the cursor position (UTF-16)."""

    text: str
    line: int
    character: int

    @classmethod
    def from_marked(cls, marked: str, marker: str = HOLE) -> Hole:
        offset = marked.index(marker)
        text = marked.replace(marker, "", 1)
        pos = position_at(text, offset)
        return cls(text=text, line=pos.line, character=pos.character)


def language_of(path: str) -> str:
    suffix = path.rsplit(".", 1)[-1]
    return {"py": "python", "js": "javascript", "ts": "typescript", "go": "go", "rs": "rust"}.get(
        suffix, "plaintext"
    )


class EditorSession:
    """One server process, initialised with inline completion and code-action resolve support."""

    def __init__(
        self, options: dict[str, Any] | None = None, server_command: list[str] | None = None
    ):
        self.options = options or {}
        self.command = server_command or [sys.executable, "-m", "diffgem_lsp"]
        self.client = LanguageClient("diffgem-demo", "0.1")
        self.status: list[dict[str, Any]] = []
        self.versions: dict[str, int] = {}

        @self.client.feature("diffgem/status")
        def _status(params: Any) -> None:
            # pygls hands unknown notifications' params over as a namedtuple (_dict_to_object).
            if hasattr(params, "_asdict"):
                params = params._asdict()
            self.status.append(
                params if isinstance(params, dict) else getattr(params, "__dict__", {})
            )

        self.diagnostics: dict[str, list[types.Diagnostic]] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)

    async def start(self) -> None:
        await self.client.start_io(*self.command)
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    text_document=types.TextDocumentClientCapabilities(
                        inline_completion=types.InlineCompletionClientCapabilities(),
                        code_action=types.CodeActionClientCapabilities(
                            resolve_support=types.ClientCodeActionResolveOptions(
                                properties=["edit"]
                            )
                        ),
                    )
                ),
                initialization_options=self.options,
            )
        )
        self.client.initialized(types.InitializedParams())

    async def wait_ready(self, timeout: float = 300) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            status = await self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="diffgem.status")
            )
            state = (
                status.get("state") if isinstance(status, dict) else getattr(status, "state", None)
            )
            if state in ("ready", "generating"):
                return time.perf_counter() - t0
            if state == "error":
                raise RuntimeError(f"model failed to load: {status}")
            await asyncio.sleep(0.1)
        raise TimeoutError("model did not load")

    def open(self, uri: str, text: str, language: str) -> None:
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language, version=1, text=text
                )
            )
        )

    def change(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.versions[uri]
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def inline(
        self, uri: str, line: int, character: int, automatic: bool = False
    ) -> list[types.InlineCompletionItem]:
        kind = (
            types.InlineCompletionTriggerKind.Automatic
            if automatic
            else types.InlineCompletionTriggerKind.Invoked
        )
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(trigger_kind=kind),
            )
        )
        if result is None:
            return []
        return list(result.items if isinstance(result, types.InlineCompletionList) else result)

    async def rewrite(
        self, uri: str, start: tuple[int, int], end: tuple[int, int]
    ) -> types.CodeAction | None:
        rng = types.Range(start=types.Position(*start), end=types.Position(*end))
        actions = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=rng,
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        for action in actions or []:
            if (
                isinstance(action, types.CodeAction)
                and action.kind == types.CodeActionKind.RefactorRewrite
            ):
                return await self.client.code_action_resolve_async(action)
        return None

    async def worker_status(self) -> dict[str, Any]:
        status = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="diffgem.status")
        )
        return status if isinstance(status, dict) else {}

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 10)
            self.client.exit(None)
        finally:
            await self.client.stop()


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits (UTF-16 positions, non-overlapping) to text, last edit first."""

    def offset(pos: types.Position) -> int:
        return offset_at(text, Position(pos.line, pos.character))

    spans = sorted(
        ((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True
    )
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text
