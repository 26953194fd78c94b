"""A lean CPU encoder pass for DiffusionGemma: append new prompt tokens' keys/values to a KV cache.

It computes what `model.model.encoder(input_ids=new, position_ids=..., cache)` writes into the cache
(transformers 5.x, `DiffusionGemmaEncoderTextModel` + `DiffusionGemmaEncoderTextAttention`): causal
attention over the cached tokens and the new ones (sliding layers within their window), the same weights
as the decoder (tied) but the encoder's own `layer_scalar` buffers. K/V go in through `cache.update`, so
the cache class keeps its own bookkeeping (RollbackCache's history, the sliding layers' window). The
encoder's hidden states are never read by the engine, so the last layer stops after its K/V and no final
norm runs. Used where `fast_decoder.lean_unsupported(model)` is None; HF's encoder stays the reference.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache

from .fast_decoder import LeanDecoder, _Layer, after_attention, project_qkv


class LeanEncoder:
    """The encoder's layers as lean specs (the decoder's tied weights, the encoder's buffers)."""

    def __init__(self, dec: LeanDecoder):
        model = dec.model
        encoder = model.model.encoder.language_model
        self.dec = dec
        self.embed = encoder.embed_tokens.weight  # [V, hidden]
        self.embed_scale = encoder.embed_tokens.embed_scale.to(self.embed.dtype)
        self.rotary = encoder.rotary_emb
        self.sliding_window: int = model.config.text_config.sliding_window
        self.layers: list[_Layer] = []
        for enc_layer, dec_layer, spec in zip(
            encoder.layers, model.model.decoder.layers, dec.layers, strict=False
        ):
            tied = all(
                a.data_ptr() == b.data_ptr()
                for a, b in zip(enc_layer.parameters(), dec_layer.parameters(), strict=True)
            )
            # Buffers are not tied (DiffusionGemmaModel._tied_weights_keys): take the encoder's own.
            spec = spec if tied else LeanDecoder._layer(enc_layer)
            self.layers.append(replace(spec, layer_scalar=enc_layer.layer_scalar))

    @torch.no_grad()
    def append(self, cache: Cache, new_ids: list[int], start: int) -> None:
        """Encode `new_ids` at positions start.. after the `start` tokens the cache holds."""
        dec = self.dec
        torch.set_flush_denormal(True)  # see LeanStep.__call__
        try:
            device = self.embed.device
            n = len(new_ids)
            ids = torch.tensor([new_ids], dtype=torch.long, device=device)  # [1, n]
            positions = torch.arange(start, start + n, device=device)[None]  # [1, n]
            h = F.embedding(ids, self.embed) * self.embed_scale  # [1, n, hidden]
            rope = {}
            for kind in set(dec.layer_types):
                cos, sin = self.rotary(h, positions, kind)  # [1, n, D]
                rope[kind] = (cos[:, :, None, :], sin[:, :, None, :])
            last = len(self.layers) - 1
            for i, spec in enumerate(self.layers):
                cos, sin = rope[dec.layer_types[i]]
                q, k, v = project_qkv(dec, spec, h, cos, sin)
                keys, values = cache.update(k, v, i)  # every key this layer's queries may see
                if i == last:
                    break  # nothing reads the last layer's output: its K/V were all the cache needed
                mask = _causal_mask(n, keys.shape[-2], spec.sliding, self.sliding_window, start)
                attn = F.scaled_dot_product_attention(
                    q,
                    keys,
                    values,
                    attn_mask=mask,
                    scale=1.0,
                    enable_gqa=spec.heads != spec.kv_heads,
                )
                h = after_attention(dec, spec, h, attn)
        finally:
            torch.set_flush_denormal(False)


def _causal_mask(n: int, kv: int, sliding: bool, window: int, start: int) -> torch.Tensor | None:
    """Which of the kv keys (the last of them are the n new tokens) each new token may attend to.

    Keys run over absolute positions start + n - kv .. start + n - 1. A query at position p sees keys at
    positions <= p, and on sliding layers only those > p - window (transformers' sliding-window causal
    mask). One new token sees every returned key: no mask at all.
    """
    if n == 1 and (not sliding or kv <= window):
        return None
    key_pos = torch.arange(start + n - kv, start + n)[None, :]  # [1, kv]
    query_pos = torch.arange(start, start + n)[:, None]  # [n, 1]
    allowed = key_pos <= query_pos
    if sliding:
        allowed &= key_pos > query_pos - window
    return allowed  # [n, kv], broadcast over heads
