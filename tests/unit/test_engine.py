"""Engine on CPU with a tiny random checkpoint: sampler == generate(), prompt cache, cancellation."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from diffgem_model.checkpoint import CheckpointError, load_checkpoint
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.layouts import PREFIX_TRIM_BAND, fim_prompt
from diffgem_model.prompt_cache import PromptCache
from diffgem_model.sampler import DenoiseCancelled, SamplerSettings, denoise

PREFIX = "import os\n\n\ndef join_all(parts):\n    result = []\n    for part in parts:\n        result.append("
SUFFIX = ")\n    return os.sep.join(result)\n\n\nprint(join_all(['a', 'b']))\n"


@pytest.fixture(scope="module")
def engine(tiny_checkpoint) -> Engine:
    return Engine.load(tiny_checkpoint, device="cpu")


@pytest.mark.tf_equivalence
@pytest.mark.parametrize("steps,seed", [(8, 0), (48, 123), (5, 7)])
def test_own_sampler_loop_reproduces_generate(engine, steps, seed):
    model = engine.model
    prompt = engine.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX))
    torch.manual_seed(seed)
    expected = (
        model.generate(
            torch.tensor([prompt.ids]),
            max_new_tokens=model.config.canvas_length,
            max_denoising_steps=steps,
        )
        .sequences[0, len(prompt.ids) :]
        .tolist()
    )

    cache, _ = PromptCache(model, max_bytes=0).encode(prompt.ids)
    generator = torch.Generator().manual_seed(seed)
    ours = denoise(
        model,
        cache,
        canvas_length=model.config.canvas_length,
        settings=SamplerSettings(max_steps=steps),
        generator=generator,
    )
    assert ours.canvas == expected


@pytest.mark.tf_equivalence
def test_own_sampler_loop_reproduces_generate_from_initial_canvas(engine):
    """Edit canvases start from the old text: generate()'s `decoder_input_ids` path."""
    model = engine.model
    prompt = engine.build_prompt(
        GenerateParams(prefix=PREFIX, suffix=SUFFIX, old_text="part.upper()")
    )
    torch.manual_seed(3)
    expected = (
        model.generate(
            torch.tensor([prompt.ids]),
            max_new_tokens=model.config.canvas_length,
            max_denoising_steps=6,
            decoder_input_ids=torch.tensor([prompt.initial_canvases[0]]),
        )
        .sequences[0, len(prompt.ids) :]
        .tolist()
    )
    cache, _ = PromptCache(model, max_bytes=0).encode(prompt.ids)
    ours = denoise(
        model,
        cache,
        canvas_length=model.config.canvas_length,
        settings=SamplerSettings(max_steps=6),
        generator=torch.Generator().manual_seed(3),
        initial_canvas=prompt.initial_canvases[0],
    )
    assert ours.canvas == expected


@pytest.mark.tf_equivalence
@pytest.mark.parametrize("rule", ["entropy", "confidence"])
def test_prompt_cache_gives_identical_output(tiny_checkpoint, rule):
    cached = Engine.load(tiny_checkpoint, device="cpu", prompt_cache_mb=64)
    uncached = Engine.load(tiny_checkpoint, device="cpu", prompt_cache_mb=0)
    sampler = SamplerSettings(rule=rule, max_steps=6)
    for typed in ["", "p", "pa", "par", "part", "part."]:
        params = GenerateParams(prefix=PREFIX + typed, suffix=SUFFIX, sampler=sampler, seed=5)
        a, b = cached.generate(params), uncached.generate(params)
        assert a.token_ids == b.token_ids, typed
        assert b.reused_tokens == 0
    # Typing at the cursor re-encoded only the last few tokens.
    assert 0 < a.encoded_tokens <= 3 and a.reused_tokens > 20
    assert cached.prompt_cache.hits == 5


def test_prompt_cache_invalidation(engine):
    cache = PromptCache(engine.model, max_bytes=64 << 20)
    tok = engine.tokenizer
    canvas = engine.canvas_length
    base = fim_prompt(tok, PREFIX, SUFFIX, canvas_length=canvas).ids
    cache.encode(base)
    # An edit before the cursor (in the suffix, which comes first) reuses only what precedes it.
    edited = fim_prompt(tok, PREFIX, SUFFIX.replace("os.sep", "'/'"), canvas_length=canvas).ids
    _, stats = cache.encode(edited)
    assert stats.reused_tokens < len(base) // 2
    # Another document shares no meaningful prefix: nothing is reused, nothing is stolen.
    entries = len(cache._entries)
    _, other = cache.encode(fim_prompt(tok, "x = 1\n", "\n", canvas_length=canvas).ids)
    assert other.reused_tokens == 0
    assert len(cache._entries) == entries + 1
    # Clearing (settings change, model reload) forgets everything.
    cache.clear()
    _, fresh = cache.encode(base)
    assert fresh.reused_tokens == 0


def test_prompt_cache_is_bounded_by_bytes(engine):
    tok = engine.tokenizer
    one = PromptCache(engine.model, max_bytes=1 << 40)
    one.encode(fim_prompt(tok, PREFIX, SUFFIX, canvas_length=16).ids)
    entry_bytes = one.nbytes
    cache = PromptCache(engine.model, max_bytes=int(entry_bytes * 2.5))
    for i in range(6):
        cache.encode(
            fim_prompt(tok, f"# file {i}\n" + PREFIX, SUFFIX + f"# {i}\n", canvas_length=16).ids
        )
    assert len(cache._entries) <= 2
    assert cache.nbytes <= entry_bytes * 2.5


def test_prefix_window_moves_in_bands(engine):
    tok = engine.tokenizer
    long_prefix = PREFIX * 40
    a = fim_prompt(tok, long_prefix, SUFFIX, canvas_length=16, max_prefix_tokens=200).ids
    b = fim_prompt(tok, long_prefix + "x", SUFFIX, canvas_length=16, max_prefix_tokens=200).ids
    # Typing one character keeps the window's start, so the cached prompt stays a prefix.
    shared = (
        next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
        if a != b[: len(a)]
        else len(a)
    )
    assert shared >= len(a) - 2
    assert len(a) <= 200 + PREFIX_TRIM_BAND + 200


def test_cancel_stops_between_steps(engine):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    params = GenerateParams(
        prefix=PREFIX, suffix=SUFFIX, sampler=SamplerSettings(max_steps=40, stop_entropy=0.0)
    )
    with pytest.raises(DenoiseCancelled):
        engine.generate(params, should_stop=should_stop)
    assert calls["n"] == 4  # three forwards ran, the fourth check stopped it


def test_confidence_rule_commits_in_parallel(engine):
    eager = SamplerSettings(rule="confidence", confidence_threshold=0.0, max_steps=16)
    one_at_a_time = SamplerSettings(
        rule="confidence", confidence_threshold=1.01, max_steps=64, stop_entropy=0.0
    )
    fast = engine.generate(
        GenerateParams(prefix=PREFIX, suffix=SUFFIX, sampler=eager, max_tokens=16)
    )
    slow = engine.generate(
        GenerateParams(prefix=PREFIX, suffix=SUFFIX, sampler=one_at_a_time, max_tokens=16)
    )
    assert fast.forwards == 1
    assert slow.forwards > fast.forwards
    assert slow.tokens_per_forward <= 1.0


def test_pinned_tokens_survive_and_truncate_at_eos(engine):
    model = engine.model
    eos = engine.tokenizer.eos_token_id
    prompt = engine.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX))
    cache, _ = PromptCache(model, 0).encode(prompt.ids)
    result = denoise(
        model,
        cache,
        canvas_length=engine.canvas_length,
        settings=SamplerSettings(max_steps=4),
        generator=torch.Generator().manual_seed(0),
        pinned={3: eos},
    )
    assert result.canvas[3] == eos
    kept, finished = engine._until_eos(result.canvas)
    assert finished and len(kept) <= 3


def test_drafts_are_reported_each_step(engine):
    drafts: list[str] = []
    settings = SamplerSettings(max_steps=5, stop_entropy=0.0)
    engine.generate(
        GenerateParams(prefix=PREFIX, suffix=SUFFIX, sampler=settings, max_tokens=16),
        on_draft=drafts.append,
    )
    assert len(drafts) == 5


def test_checkpoint_errors_are_clear(tmp_path, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(broken)
    (broken / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_text((tiny_checkpoint / name).read_text())
    with pytest.raises(CheckpointError, match="could not be loaded"):
        load_checkpoint(broken)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps({}))
    with pytest.raises(CheckpointError, match="no weights"):
        load_checkpoint(no_weights)


def test_fim_layout_matches_contract(engine):
    tok = engine.tokenizer
    vocab = tok.get_vocab()
    prompt = fim_prompt(tok, "a = 1\nb = ", "\nc = 3\n", canvas_length=16, old_text="2")
    ids = prompt.ids
    assert ids[0] == tok.bos_token_id and ids[1] == vocab["<fim_suffix>"]
    assert ids[-1] == vocab["<fim_middle>"] and vocab["<fim_prefix>"] in ids
    middle = ids.index(vocab["<fim_prefix>"])
    assert tok.decode(ids[2:middle]) == "\nc = 3\n"
    assert tok.decode(ids[middle + 1 : -1]) == "a = 1\nb = "
    assert len(prompt.initial_canvases) == 1 and len(prompt.initial_canvases[0]) == 16
    assert prompt.initial_canvases[0][-1] == tok.eos_token_id
    assert replace(SamplerSettings(), max_steps=3).max_steps == 3


def test_long_edit_spans_several_canvases(engine):
    """A selection longer than one canvas is rewritten whole, never cut at the canvas boundary."""
    old = "total = total + values[i] * weights[i] - offsets[i] / scale + bias\n" * 4
    prompt = engine.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX, old_text=old))
    old_ids = engine.tokenizer(old, add_special_tokens=False).input_ids
    assert len(prompt.initial_canvases) == len(old_ids) // engine.canvas_length + 1
    assert sum(prompt.initial_canvases, [])[: len(old_ids)] == old_ids
    gen = engine.generate(
        GenerateParams(
            prefix=PREFIX, suffix=SUFFIX, old_text=old, sampler=SamplerSettings(max_steps=2)
        )
    )
    assert gen.canvases >= len(prompt.initial_canvases) or gen.finished
