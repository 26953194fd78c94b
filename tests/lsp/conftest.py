"""pytest-lsp fixtures: the real server (`python -m diffgem_lsp`) with the real embedded checkpoint."""

from __future__ import annotations

import sys

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "diffgem_lsp", "--log-level", "debug"]
)

# Deterministic, quick settings for tests: a fixed seed and a small invoked step budget.
TEST_OPTIONS = {"invokedSteps": 8, "automaticSteps": 4, "debounceMs": 0, "seed": 0}


def capabilities() -> types.ClientCapabilities:
    """VS Code-like capabilities plus inline completion (pytest-lsp's profiles predate it)."""
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"])
            ),
            completion=types.CompletionClientCapabilities(),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    lsp_client.status_events = []  # type: ignore[attr-defined]

    @lsp_client.feature("diffgem/status")
    def _status(params):  # the server's worker-state notifications
        lsp_client.status_events.append(params)  # type: ignore[attr-defined]

    lsp_client.init_result = await lsp_client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(capabilities=capabilities(), initialization_options=TEST_OPTIONS)
    )
    yield
    await lsp_client.shutdown_session()
