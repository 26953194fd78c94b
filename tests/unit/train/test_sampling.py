"""Masked-noise denoiser and batched K-candidate infill on a tiny random checkpoint (CPU)."""

from __future__ import annotations

import pytest
import torch
from diffgem_model.candidates import best_of, denoise_batch
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.masked_sampling import denoise_masked, mask_id_of, sampler_name
from diffgem_model.sampler import SamplerSettings

PREFIX = "def join_all(parts):\n    result = []\n    for part in parts:\n        result.append("
SUFFIX = ")\n    return result\n"


@pytest.fixture(scope="module")
def engine(tiny_checkpoint) -> Engine:
    return Engine.load(tiny_checkpoint, device="cpu")


def _cache(engine):
    prompt = engine.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX))
    cache, _ = engine.prompt_cache.encode(prompt.ids)
    return cache


def test_sampler_is_named_by_the_checkpoint_config(engine):
    config = engine.model.config
    assert sampler_name(config) == "uniform" and mask_id_of(config) == config.pad_token_id
    config.diffgem_sampler, config.diffgem_mask_token_id = "masked_confidence", 5
    try:
        assert sampler_name(config) == "masked_confidence" and mask_id_of(config) == 5
    finally:
        del config.diffgem_sampler, config.diffgem_mask_token_id


def test_masked_denoiser_fills_every_position_and_keeps_pins(engine):
    cache = _cache(engine)
    length = cache.get_seq_length()
    mask_id = mask_id_of(engine.model.config)
    canvas = engine.canvas_length
    settings = SamplerSettings(rule="confidence", max_steps=6, confidence_threshold=0.99)
    r = denoise_masked(
        engine.model,
        cache,
        canvas_length=canvas,
        settings=settings,
        mask_id=mask_id,
        pinned={3: 42, 4: 43},
    )
    assert cache.get_seq_length() == length  # the caller's cache is untouched
    assert r.forwards <= 6 and len(r.canvas) == canvas
    assert mask_id not in r.canvas  # finished within max_steps: nothing left masked
    assert r.canvas[3:5] == [42, 43]


def test_batched_candidates_differ_by_seed_and_respect_pinned_lengths(engine):
    cache = _cache(engine)
    eos = engine.eos_ids[0]
    settings = SamplerSettings(rule="confidence", max_steps=4, confidence_threshold=0.99)
    canvas, logprob, forwards = denoise_batch(
        engine.model,
        cache,
        rows=4,
        canvas_length=engine.canvas_length,
        settings=settings,
        generator=torch.Generator().manual_seed(0),
        eos_id=eos,
        lengths=[3, None, 5, None],
    )
    assert canvas.shape == (4, engine.canvas_length) and forwards <= 4
    assert (canvas[0, 3:] == eos).all() and (canvas[2, 5:] == eos).all()
    assert (logprob <= 0).all()
    assert len({tuple(row) for row in canvas.tolist()}) > 1  # the rows are distinct candidates


def test_best_of_ranks_accepted_candidates_first(engine):
    settings = SamplerSettings(rule="confidence", max_steps=4, confidence_threshold=0.99)
    free = best_of(engine, PREFIX, SUFFIX, k=4, settings=settings)
    assert len(free.candidates) == 4 and free.text == free.candidates[free.index].text
    best = max(free.candidates, key=lambda c: c.mean_logprob)
    assert free.text == best.text
    # An accept check that only one (not top-ranked) candidate passes makes that one win.
    target = min(range(4), key=lambda r: free.candidates[r].mean_logprob)
    wanted = free.candidates[target].text
    picked = best_of(
        engine, PREFIX, SUFFIX, k=4, settings=settings, accept=lambda text: text == wanted
    )
    assert picked.text == wanted and picked.candidates[picked.index].accepted
