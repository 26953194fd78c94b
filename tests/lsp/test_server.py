"""End-to-end over LSP: the real server, the real worker, the real embedded checkpoint.

Every test that names a model-backed path first asserts that its fixture exercises it (a hole the model
fills non-empty, a selection whose rewrite changes something; see oracle.py), then that the server's
answer is exactly what the same canvas, engine call and post-processing give in-process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from examples.editor_client import Hole, apply_edits

from . import oracle
from .conftest import TEST_OPTIONS

# A long generation for the cancel and crash tests (the hole need not be filled for those).
FIB = Hole.from_marked(oracle.INFILL_CANDIDATES[0])


def open_doc(
    client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1
) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=version, text=text
            )
        )
    )


async def status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="diffgem.status")
    )


async def wait_ready(client: LanguageClient, timeout: float = 300) -> dict:
    """Until the worker has loaded the model and is idle (a hang guard: a load on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = await status(client)
        if current.get("state") == "ready" and current.get("busy") is None:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker not ready: {current}")


def inline_params(uri: str, hole: Hole, automatic: bool = False) -> types.InlineCompletionParams:
    kind = (
        types.InlineCompletionTriggerKind.Automatic
        if automatic
        else types.InlineCompletionTriggerKind.Invoked
    )
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=hole.line, character=hole.character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def test_initialize_advertises_capabilities(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert isinstance(caps.code_action_provider, types.CodeActionOptions)
    assert caps.code_action_provider.resolve_provider is True
    assert types.CodeActionKind.RefactorRewrite in caps.code_action_provider.code_action_kinds
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    commands = set(caps.execute_command_provider.commands)
    assert {"diffgem.restartWorker", "diffgem.status", "diffgem.applyRewrite"} <= commands
    ready = await wait_ready(client)
    assert "embedded" in ready["model"]

    def states() -> list[str]:
        return [e.state if hasattr(e, "state") else e["state"] for e in client.status_events]

    # The status command can answer "ready" before the diffgem/status notification is read.
    deadline = time.monotonic() + 30
    while "ready" not in states() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert states()[0] == "loading" and "ready" in states(), states()


async def test_inline_completion_returns_the_models_fill(client: LanguageClient):
    hole, expected = oracle.filled_hole()
    assert expected.insert_text.strip()  # the fixture exercises the path: a non-empty fill
    uri = "file:///tmp/hole.py"
    open_doc(client, uri, hole.text)
    await wait_ready(client)
    result = await client.text_document_inline_completion_async(inline_params(uri, hole))
    [item] = result.items
    assert item.insert_text == expected.insert_text
    assert item.range.start == types.Position(line=hole.line, character=hole.character)
    assert item.range.start.line == item.range.end.line


async def test_completion_fallback_uses_the_same_infill(client: LanguageClient):
    hole, expected = oracle.filled_hole()
    assert expected.insert_text.strip()  # the fixture exercises the path: a non-empty fill
    uri = "file:///tmp/fallback.py"
    open_doc(client, uri, hole.text)
    await wait_ready(client)
    inline = await client.text_document_inline_completion_async(inline_params(uri, hole))
    completion = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=hole.line, character=hole.character),
        )
    )
    assert completion.is_incomplete is True
    [item] = completion.items
    assert [i.insert_text for i in inline.items] == [expected.insert_text]
    assert item.text_edit.new_text == expected.insert_text
    assert item.text_edit.range.start == types.Position(line=hole.line, character=hole.character)


async def test_code_action_listing_is_instant_and_resolve_applies_cleanly(client: LanguageClient):
    selection, expected = oracle.changing_rewrite()
    assert (
        expected != selection.text
    )  # the fixture exercises the path: the rewrite changes something
    uri = "file:///tmp/rewrite.py"
    open_doc(client, uri, selection.text)
    before = await wait_ready(client)
    rng = types.Range(start=types.Position(*selection.start), end=types.Position(*selection.end))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    [action] = actions
    assert (
        action.title == "Rewrite selection" and action.kind == types.CodeActionKind.RefactorRewrite
    )
    assert action.edit is None
    after_listing = await status(client)
    assert (
        after_listing["cache_lookups"] == before["cache_lookups"]
    )  # listing asked the model nothing
    resolved = await client.code_action_resolve_async(action)
    after_resolve = await status(client)
    assert after_resolve["cache_lookups"] == before["cache_lookups"] + 1
    assert resolved.disabled is None and resolved.edit is not None, resolved
    [change] = resolved.edit.document_changes
    assert change.text_document.version == 1
    assert apply_edits(selection.text, change.edits) == expected


def without_prefill(client: LanguageClient) -> None:
    """No background prefill from the didOpen that follows: "busy" is then this test's request (a
    warm-up running when the test looks would pass for it: diffgem_lsp/prefill.py)."""
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"diffgem": {"prefill": False}})
    )


async def test_cancelled_generation_stops_in_the_worker(client: LanguageClient):
    uri = "file:///tmp/cancel.py"
    without_prefill(client)
    open_doc(client, uri, FIB.text)
    before = await wait_ready(client)
    # A long generation: thousands of steps with the early stop off.
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"diffgem": {"invokedSteps": 4000, "earlyStop": False, "sampler": "entropy"}}
        )
    )
    future = asyncio.ensure_future(
        client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, FIB), msg_id="long-one"
        )
    )
    deadline = time.monotonic() + 120  # a hang guard only
    while (await status(client)).get("busy") is None:
        assert time.monotonic() < deadline, "generation never started"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-one"))
    with pytest.raises(JsonRpcException) as error:
        await future
    assert error.value.code == types.LSPErrorCodes.RequestCancelled
    while (after := await status(client)).get("busy") is not None:
        await asyncio.sleep(0.02)
    # Stopped between steps, not run to its 4000 steps: only finished generations are counted.
    assert after["totals"]["generations"] == before["totals"]["generations"], after["totals"]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"diffgem": {**TEST_OPTIONS, "earlyStop": True, "sampler": "confidence"}}
        )
    )
    await assert_serves_the_filled_hole(client)


async def assert_serves_the_filled_hole(client: LanguageClient) -> None:
    """The server still answers a model-backed request, and answers it right."""
    hole, expected = oracle.filled_hole()
    uri = "file:///tmp/after.py"
    open_doc(client, uri, hole.text)
    result = await client.text_document_inline_completion_async(inline_params(uri, hole))
    assert [i.insert_text for i in result.items] == [expected.insert_text]


async def test_worker_crash_gives_an_error_then_recovers(client: LanguageClient):
    uri = "file:///tmp/crash.py"
    # A prefill seen as "busy" would let the kill land before the request reached the worker; the
    # next worker would then answer it instead of it failing.
    without_prefill(client)
    open_doc(client, uri, FIB.text)
    first = await wait_ready(client)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"diffgem": {"invokedSteps": 4000, "earlyStop": False, "sampler": "entropy"}}
        )
    )
    future = asyncio.ensure_future(
        client.text_document_inline_completion_async(inline_params(uri, FIB))
    )
    while (await status(client)).get("busy") is None:
        await asyncio.sleep(0.02)
    os.kill(first["pid"], signal.SIGKILL)
    with pytest.raises(JsonRpcException) as error:
        await future
    assert "exited" in str(error.value)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"diffgem": {**TEST_OPTIONS, "earlyStop": True, "sampler": "confidence"}}
        )
    )
    second = await wait_ready(client)
    assert second["pid"] != first["pid"]
    await assert_serves_the_filled_hole(client)


async def test_position_past_end_is_an_error_not_a_crash(client: LanguageClient):
    uri = "file:///tmp/short.py"
    open_doc(client, uri, "x = 1\n")
    await wait_ready(client)
    past = inline_params(uri, Hole(text="", line=40, character=0))
    with pytest.raises(JsonRpcException) as error:
        await client.text_document_inline_completion_async(past)
    assert error.value.code == -32602  # InvalidParams
    with pytest.raises(JsonRpcException):
        await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri="file:///never/opened.py"),
                position=types.Position(line=0, character=0),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
    assert (await status(client))["state"] == "ready"  # still serving


async def test_non_ascii_positions_are_utf16(client: LanguageClient):
    hole, expected = oracle.filled_non_ascii_hole()
    assert expected.insert_text.strip()  # the fixture exercises the path: a non-empty fill
    line = hole.text.split("\n")[hole.line]
    before_cursor = line.encode("utf-16-le")[: hole.character * 2].decode("utf-16-le")
    # The column counts UTF-16 code units: more than the code points when an astral character
    # (an emoji) precedes the cursor.
    assert hole.character > len(before_cursor.encode("utf-32-le")) // 4
    uri = "file:///tmp/unicode.py"
    open_doc(client, uri, hole.text)
    await wait_ready(client)
    result = await client.text_document_inline_completion_async(inline_params(uri, hole))
    [item] = result.items
    assert item.range.start == types.Position(line=hole.line, character=hole.character)
    assert item.insert_text == expected.insert_text


async def test_huge_and_binary_files_get_no_suggestion(client: LanguageClient):
    await wait_ready(client)
    open_doc(client, "file:///tmp/huge.py", "x = 1\n" * 300_000)
    open_doc(client, "file:///tmp/blob.py", "abc\x00def\n")
    for uri in ("file:///tmp/huge.py", "file:///tmp/blob.py"):
        result = await client.text_document_inline_completion_async(
            inline_params(uri, Hole(text="", line=0, character=3))
        )
        assert not result.items


async def test_bad_settings_give_one_message_and_defaults(client: LanguageClient):
    await wait_ready(client)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"diffgem": {"invokedStep": 3, "debounceMs": "fast"}}
        )
    )
    deadline = time.monotonic() + 60  # a hang guard only
    while len(client.messages) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    texts = [m.message for m in client.messages]
    assert any("unknown setting diffgem.invokedStep" in t for t in texts)
    assert any("diffgem.debounceMs" in t and "using 60" in t for t in texts)
    assert (await status(client))["state"] == "ready"


def test_lsp_process_never_imports_torch():
    code = (
        "import sys\n"
        "import diffgem_lsp.cli, diffgem_lsp.server, diffgem_lsp.session, diffgem_lsp.handlers\n"
        "import diffgem_lsp.pipelines, diffgem_lsp.results, diffgem_lsp.backends.local\n"
        "import examples.editor_client\n"
        "from diffgem_lsp.server import create_server\n"
        "create_server()\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'transformers', 'diffgem_model')))\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=root)
