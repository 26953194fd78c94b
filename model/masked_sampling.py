"""Denoising for checkpoints trained with masked (absorbing) noise: the canvas starts all-mask and fills in.

Boundary: one canvas against an encoder cache the caller owns (never modified), like sampler.denoise, and
the same DenoiseResult; choosing between the two is `sampler_name(config)`. The engine owner hooks it in
where Engine.generate calls sampler.denoise (see model/train/train.py: a masked run writes
`diffgem_sampler: "masked_confidence"` and `diffgem_mask_token_id` into config.json).

Rule (MDLM / LLaDA low-confidence remasking, arXiv:2406.07524, arXiv:2502.09992, with Fast-dLLM's parallel
threshold, arXiv:2505.22618): each step predicts every masked position; those whose probability is at least
`confidence_threshold` are committed, and at least ceil(open / steps_left) of the most confident ones, so the
canvas is full after `max_steps`. Committed positions never change; the rest stay the mask id.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers.cache_utils import Cache

from .sampler import (
    DenoiseCancelled,
    DenoiseResult,
    SamplerSettings,
    _decoder_inputs,
    temperature_at,
)


def sampler_name(config) -> str:
    """Which denoiser a checkpoint was trained for: "masked_confidence" or "uniform" (the default)."""
    return str(getattr(config, "diffgem_sampler", None) or "uniform")


def mask_id_of(config) -> int:
    found = getattr(config, "diffgem_mask_token_id", None)
    return int(found if found is not None else config.pad_token_id)


@torch.no_grad()
def denoise_masked(
    model,
    cache: Cache,
    *,
    canvas_length: int,
    settings: SamplerSettings,
    mask_id: int,
    pinned: dict[int, int] | None = None,
    initial_canvas: list[int] | None = None,
    eos_ids: tuple[int, ...] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> DenoiseResult:
    """Fill a canvas of mask ids (an edit's `initial_canvas` is kept as the starting guess for open positions)."""
    device = model.device
    pinned = pinned or {}
    current = torch.full((1, canvas_length), mask_id, dtype=torch.long, device=device)
    committed = torch.zeros((1, canvas_length), dtype=torch.bool, device=device)
    for pos, token in pinned.items():
        current[0, pos] = token
        committed[0, pos] = True
    guess = None
    if initial_canvas is not None:
        assert len(initial_canvas) == canvas_length, (len(initial_canvas), canvas_length)
        guess = torch.tensor([initial_canvas], dtype=torch.long, device=device)
    mask_mapping, positions = _decoder_inputs(model, cache, current)
    embed_dtype = model.model.decoder.embed_tokens.weight.dtype
    confidence = torch.zeros((1, canvas_length), device=device)
    self_conditioning = None
    forwards = 0
    final = current
    eos = torch.tensor(eos_ids or (-1,), device=device)
    for cur_step in reversed(range(1, settings.max_steps + 1)):
        if should_stop():
            raise DenoiseCancelled()
        inputs = current if guess is None else torch.where(committed, current, guess)
        logits = model(
            decoder_input_ids=inputs,
            self_conditioning_logits=self_conditioning,
            decoder_attention_mask=mask_mapping,
            past_key_values=cache,
            decoder_position_ids=positions,
        ).logits.float()  # [1, C, V]
        forwards += 1
        processed = logits / temperature_at(settings, cur_step)
        processed[..., mask_id] = float("-inf")  # the mask id is never a prediction
        probs = torch.softmax(processed, dim=-1)
        step_conf, argmax = probs.max(dim=-1)  # [1, C]
        open_conf = torch.where(committed, torch.full_like(step_conf, -1.0), step_conf)
        n_open = int((~committed).sum())
        if n_open == 0:
            break
        newly = (open_conf >= settings.confidence_threshold) & ~committed
        need = -(-n_open // cur_step)  # finish by the last step
        if int(newly.sum()) < need:
            top = open_conf.topk(need, dim=-1).indices
            newly[0, top[0]] = True
        current = torch.where(newly, argmax, current)
        confidence = torch.where(newly, step_conf, confidence)
        committed |= newly
        final = torch.where(committed, current, argmax)
        if _settled(committed[0], final[0], eos):
            break
        self_conditioning = processed.masked_fill(torch.isinf(processed), -1e4).to(embed_dtype)
    return DenoiseResult(
        canvas=final[0].tolist(), confidence=confidence[0].tolist(), forwards=forwards
    )


def _settled(committed: torch.Tensor, canvas: torch.Tensor, eos: torch.Tensor) -> bool:
    """Every position up to the first committed EOS is committed: the rest is padding."""
    if bool(committed.all()):
        return True
    is_eos = committed & torch.isin(canvas, eos)
    if not bool(is_eos.any()):
        return False
    return bool(committed[: int(is_eos.nonzero()[0])].all())
