"""transformers compatibility: the one place that knows how each release from 5.17 on names the KV cache.

Boundary: only calls into DiffusionGemma that take or return the encoder cache go through here; nothing
else in the engine looks at `transformers.__version__` or at argument names.

transformers 5.24 renamed the cache argument and output field `past_key_values` -> `cache`
(huggingface/transformers, models/diffusion_gemma/modeling_diffusion_gemma.py). The model and layer
`forward`s keep the old keyword as a deprecated alias until 5.40, but the two static mask helpers
(`create_diffusion_decoder_attention_mask`, `DiffusionGemmaEncoderTextModel.create_masks_for_generate`)
got no alias in 5.24, so they are called with the cache *positionally* — the position never changed. The
keyword for `forward` is read from the installed signature rather than from a version number, so a
release that drops the alias (5.40) needs no change here.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import torch
from transformers import DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import Cache


def _cache_keyword() -> str:
    params = inspect.signature(DiffusionGemmaForBlockDiffusion.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


# The keyword that `forward` (model, encoder, decoder) takes the cache under in this installation.
CACHE_KWARG: str = _cache_keyword()


def with_cache(cache: Cache | None) -> dict[str, Cache | None]:
    """`{CACHE_KWARG: cache}`, to splat into a model, encoder or decoder `forward` call."""
    return {CACHE_KWARG: cache}


def decoder_attention_mask(
    model: DiffusionGemmaForBlockDiffusion,
    cache: Cache,
    canvas: torch.Tensor,
    attention_mask: torch.Tensor,
) -> dict:
    """The decoder's bidirectional mask mapping for `canvas` ([B, C] ids) against `cache`.

    Only `canvas.shape[:2]` is read by transformers, so the ids stand in for the embeddings.
    """
    return model.model.decoder.create_diffusion_decoder_attention_mask(
        model.config, canvas.unsqueeze(-1), cache, attention_mask
    )


def encoder_masks(
    model: DiffusionGemmaForBlockDiffusion,
    cache: Cache,
    *,
    new_tokens: int,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
) -> dict:
    """The causal (full and sliding) mask mapping for encoding `new_tokens` more tokens after `cache`."""
    embeds = torch.empty((1, new_tokens, 0), dtype=model.dtype, device=model.device)
    return model.model.encoder.create_masks_for_generate(
        model.config, embeds, attention_mask, cache, position_ids
    )


def output_cache(outputs: Any) -> Cache | None:
    """The cache an encoder/model output carries, under whichever field name this release uses.

    Read from the dataclass fields, not by attribute, because 5.24 warns when `.past_key_values` is read.
    """
    names = {f.name for f in dataclasses.fields(outputs)}
    for name in ("cache", "past_key_values"):
        if name in names and getattr(outputs, name) is not None:
            return getattr(outputs, name)
    return None
