"""The "Rewrite selection…" fixture for the real-editor tests: a chat model behind the vLLM stand-in, and a
selection + instruction whose rewrite the server applies.

A tiny random chat checkpoint whose answers are identifiers (tests/instruction_checkpoint.py) is served by
the loopback stand-in (tests/backends/vllm_standin.py) in this process; the editor's server connects to
it. Searched first through a plain LSP client with the editors' settings (as tests/editors/actions.py
does for the embedded model): the first selection and instruction the server really rewrites is the
fixture, and the document it leaves is what the editor's buffer must end up as. The stand-in records
every prompt, so a test also sees that the words typed in the editor reached the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import TEST_SETTINGS

# Plain ASCII the editors' prompts take as typed (tmux send-keys, playwright keyboard.type).
INSTRUCTIONS = ["use a clearer name", "rename it", "pick a better name", "make it descriptive"]


@dataclass(frozen=True)
class Instructed:
    text: str  # the whole file
    start: tuple[int, int]  # (line, character), 0-based; ASCII samples
    end: tuple[int, int]
    instruction: str
    after: str  # the file once the server's edit is applied
    settings: dict  # the editors' server settings (the stand-in's endpoint in them)

    def for_driver(self, file: str) -> dict:
        return {
            "file": file,
            "start": list(self.start),
            "end": list(self.end),
            "instruction": self.instruction,
        }


async def _search(settings: dict) -> Instructed:
    from examples.editor_client import apply_edits
    from tests.lsp.test_instruction_rewrite import CANDIDATES, Window, as_dict, target

    s = Window(settings)
    await s.start()
    try:
        await s.wait_ready()
        tried = []
        for n, instruction in enumerate(INSTRUCTIONS):
            for i, (text, start, end) in enumerate(CANDIDATES):
                uri = f"file:///tmp/diffgem-instructed-{n}-{i}.py"
                s.open(uri, text, "python")
                answer = as_dict(
                    await s.instructed(target(uri, start, end, instruction=instruction))
                )
                tried.append(answer)
                if answer["applied"]:
                    [change] = s.edits[-1].document_changes or []
                    after = apply_edits(text, list(change.edits))
                    if after != text:
                        return Instructed(text, start, end, instruction, after, settings)
        raise AssertionError(f"no selection was rewritten as instructed: {tried}")
    finally:
        await s.stop()


@pytest.fixture(scope="module", name="instructed")
def instructed_fixture(tmp_path_factory) -> Iterator[tuple[Instructed, object]]:
    """(the fixture, the running stand-in): the editor under test talks to the same stand-in."""
    from tests.backends.vllm_standin import EmbeddedModel, StandinServer
    from tests.instruction_checkpoint import make_identifier_checkpoint

    path = make_identifier_checkpoint(Path(tmp_path_factory.mktemp("idchat")) / "ckpt", seed=0)
    server = StandinServer(EmbeddedModel(str(path))).start()
    try:
        settings = {**TEST_SETTINGS, "backend": "vllm", "endpoint": server.url}
        yield asyncio.run(_search(settings)), server
    finally:
        server.stop()


def instructed_turns(server, instruction: str, since: int) -> int:
    """How many chat turns the stand-in received after its first `since` requests, each of them an
    edit turn asking for `instruction` (-1 when one of them is anything else)."""
    from diffgem_lsp.backends.vllm_prompts import CHAT_EDIT_REQUEST

    turns = [b["messages"] for b in server.record.bodies[since:] if "messages" in b]
    expected = CHAT_EDIT_REQUEST.format(instruction=instruction)
    if not all(t[0]["content"].startswith(expected) for t in turns):
        return -1
    return len(turns)
