"""The `chat` layout (DiffusionGemma-it) end to end through the engine, on a checkpoint in the real format.

The checkpoint (tests/chat_checkpoint.py) has Gemma's special tokens and chat template and no layout marker
in its config, so the engine must pick `chat` itself; infill and rewrite run through `Engine.generate`.
"""

from __future__ import annotations

import json

import pytest
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.layouts import CHAT_INSTRUCTION, chat_prompt
from diffgem_model.sampler import SamplerSettings

from tests.chat_checkpoint import make_chat_checkpoint
from tests.conftest import stdlib_texts

WINDOW = 16
PREFIX = "def scale(values, factor):\n    out = []\n    for value in values:\n        out.append("
SUFFIX = ")\n    return out\n\n\nprint(scale([1, 2], 3))\n"


@pytest.fixture(scope="module")
def chat_path(tmp_path_factory):
    return make_chat_checkpoint(
        tmp_path_factory.mktemp("chat") / "ckpt", stdlib_texts(), seed=2, sliding_window=WINDOW
    )


@pytest.fixture(scope="module")
def chat(chat_path) -> Engine:
    return Engine.load(chat_path, device="cpu", prompt_cache_mb=64)


def test_real_format_is_recognised_as_chat(chat, chat_path):
    assert "diffgem_prompt_layout" not in json.loads((chat_path / "config.json").read_text())
    assert chat.layout == "chat"
    tok = chat.tokenizer
    assert tok.convert_tokens_to_ids("<end_of_turn>") in chat.eos_ids
    text = tok.decode(chat.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX)).ids)
    assert text.startswith("<bos><start_of_turn>user\n" + CHAT_INSTRUCTION)
    assert PREFIX + "<HOLE>" + SUFFIX.strip() + "<end_of_turn>\n" in text
    assert text.endswith("<start_of_turn>model\n")


def test_prompt_level_infill_end_to_end(chat):
    gen = chat.generate(
        GenerateParams(
            prefix=PREFIX, suffix=SUFFIX, max_tokens=8, sampler=SamplerSettings(max_steps=4)
        )
    )
    assert gen.token_ids, "empty fill"  # the path really produced a middle
    assert (
        gen.finished and len(gen.token_ids) <= 8
    )  # the EOS pinned after the probed length ends it
    assert gen.text


def test_prompt_level_rewrite_end_to_end(chat):
    old = "value * factor"
    params = GenerateParams(
        prefix=PREFIX, suffix=SUFFIX, old_text=old, sampler=SamplerSettings(max_steps=4)
    )
    text = chat.tokenizer.decode(chat.build_prompt(params).ids)
    assert PREFIX + "<EDIT>" + old + "</EDIT>" in text
    gen = chat.generate(params)
    assert gen.canvases >= 1 and gen.forwards >= 1
    assert gen.text != old  # a random model rewrites something


def test_typing_reuses_the_long_chat_prompt_past_the_window(chat, chat_path):
    """The turn's head (template, instruction, prefix) is reused; only what follows the cursor is re-encoded."""
    uncached = Engine.load(chat_path, device="cpu", prompt_cache_mb=0)
    chat.prompt_cache.clear()
    long_prefix = "# helpers\n" + "x = [i * 2 for i in range(10)]\n" * 6 + PREFIX
    sampler = SamplerSettings(max_steps=2)
    for typed in ["", "v", "va"]:
        params = GenerateParams(
            prefix=long_prefix + typed, suffix=SUFFIX, max_tokens=8, sampler=sampler
        )
        a, b = chat.generate(params), uncached.generate(params)
        assert a.token_ids == b.token_ids
    assert a.reused_tokens > 4 * WINDOW
    assert a.encoded_tokens < a.reused_tokens


def test_long_prefix_is_trimmed_in_bands_so_typing_keeps_the_start(chat):
    tok = chat.tokenizer
    long_prefix = "value = compute(value) + 1\n" * 200 + PREFIX  # well over max_context_chars
    a = chat_prompt(tok, long_prefix, SUFFIX, canvas_length=16, max_context_chars=2000).ids
    b = chat_prompt(tok, long_prefix + "v", SUFFIX, canvas_length=16, max_context_chars=2000).ids
    assert len(tok.decode(a)) < len(long_prefix)  # the prefix really was trimmed
    shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    tail = len(tok(SUFFIX.strip(), add_special_tokens=False).input_ids) + 16
    assert shared >= len(a) - tail  # only the cursor's surroundings and what follows changed
