"""The first denoising step with the prompt's few new tokens folded in: one pass writes their KV and denoises.

Boundary: a `fast_decoder.LeanStep` whose first call also does `fast_encoder.LeanEncoder.append`'s work
for the tokens a keystroke added to a cached prompt; every later call is LeanStep's own. It writes the
new tokens' K/V into the cache (through `cache.update`, as the encoder does) and nothing else.

Why: the encoder and the decoder share one backbone (tied weights: transformers'
modeling_diffusion_gemma.py, `DiffusionGemmaModel._tied_weights_keys`), and a keystroke's encode of 1-3 tokens costs about a third of a decoder step on a CPU
(9-29 ms vs 35-60 ms at load ~4, bench/speed.md): one full pass over the weights for a couple of rows,
plus every op's fixed cost. Stacking those rows onto the canvas's rows in the first step's matmuls
reads each weight once for both. Attention stays separate: the new tokens attend causally to the cached
prompt (sliding layers within their window, `fast_encoder._causal_mask`), the canvas bidirectionally to
the whole prompt, new tokens included, as the decoder reads it after the encoder ran. Only the last
step of a layer differs per row: the encoder's and decoder's `layer_scalar` buffers are not tied.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache

from .fast_decoder import (
    LeanDecoder,
    LeanStep,
    _layer_kv,
    _rms,
    after_attention,
    project_qkv,
)
from .fast_encoder import LeanEncoder, _causal_mask

# At most this many new prompt tokens are folded into the first step (a keystroke adds 1-3); a longer
# encode (a paste, another place in the file) is matmul-bound and gains nothing from sharing a pass.
FOLD_MAX_TOKENS = 16
# DIFFGEM_FOLD_ENCODE=0 encodes every prompt before the first step (A/B runs, bench/speed.py).
ENV_SWITCH = "DIFFGEM_FOLD_ENCODE"


def fold_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


def foldable(dec: LeanDecoder, enc: LeanEncoder) -> bool:
    """Whether the encoder's layers run on the decoder's own weights (tied), so one matmul serves both."""
    return all(e.qkv is d.qkv for e, d in zip(enc.layers, dec.layers, strict=True))


class FoldedStep(LeanStep):
    """LeanStep for a canvas after `start` cached tokens and `new_ids` not yet encoded."""

    def __init__(
        self,
        dec: LeanDecoder,
        enc: LeanEncoder,
        cache: Cache,
        canvas_length: int,
        new_ids: list[int],
        start: int,
    ):
        assert new_ids and cache.get_seq_length() == start, (len(new_ids), start)
        self.dec, self.enc, self.cache = dec, enc, cache
        self.C = canvas_length
        self.new_ids, self.start = new_ids, start
        device, dtype = dec.embed.device, dec.embed.dtype
        prompt_len = start + len(new_ids)
        positions = torch.arange(prompt_len, prompt_len + canvas_length, device=device)[None]
        probe = torch.empty((1, canvas_length, 1), dtype=dtype, device=device)
        self.rope = {}
        for kind in set(dec.layer_types):
            cos, sin = dec.rotary(probe, positions, kind)  # [1, C, D] each
            self.rope[kind] = (cos[:, :, None, :], sin[:, :, None, :])  # [1, C, 1, D]
        # Filled by the first call, once the new tokens' K/V are in the cache (LeanStep's buffers).
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.pending = True

    @torch.no_grad()
    def __call__(
        self, canvas: torch.Tensor, self_conditioning: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not self.pending:
            return super().__call__(canvas, self_conditioning)
        assert self_conditioning is None, "the first step has no previous distribution"
        torch.set_flush_denormal(True)  # as LeanStep.__call__
        try:
            logits = self._folded(canvas)
        finally:
            torch.set_flush_denormal(False)
        self.pending = False
        return logits

    def _folded(self, canvas: torch.Tensor) -> torch.Tensor:
        dec, enc, C, start = self.dec, self.enc, self.C, self.start
        eps, n = dec.eps, len(self.new_ids)
        device = dec.embed.device
        ids = torch.tensor([self.new_ids], dtype=torch.long, device=device)  # [1, n]
        h_new = F.embedding(ids, enc.embed) * enc.embed_scale  # [1, n, hidden], as LeanEncoder
        h_canvas = _rms(
            F.embedding(canvas, dec.embed) * dec.embed_scale, None, eps
        )  # [1, C, hidden]
        h = torch.cat([h_new, h_canvas], dim=1)  # [1, n + C, hidden]
        positions = torch.arange(start, start + n, device=device)[None]  # [1, n]
        rope = {}
        for kind in set(dec.layer_types):
            cos, sin = enc.rotary(h_new, positions, kind)  # [1, n, D]
            canvas_cos, canvas_sin = self.rope[kind]
            rope[kind] = (
                torch.cat([cos[:, :, None, :], canvas_cos], dim=1),  # [1, n + C, 1, D]
                torch.cat([sin[:, :, None, :], canvas_sin], dim=1),
            )
        for i, (spec, enc_spec) in enumerate(zip(dec.layers, enc.layers, strict=True)):
            cos, sin = rope[dec.layer_types[i]]
            q, k, v = project_qkv(
                dec, spec, h, cos, sin
            )  # q [1, H, n + C, D]; k, v [1, KV, n + C, D]
            gqa = spec.heads != spec.kv_heads
            # The new tokens: the encoder's causal attention over every key the cache returns.
            keys, values = self.cache.update(k[:, :, :n], v[:, :, :n], i)
            mask = _causal_mask(n, keys.shape[-2], spec.sliding, enc.sliding_window, start)
            new_attn = F.scaled_dot_product_attention(
                q[:, :, :n], keys, values, attn_mask=mask, scale=1.0, enable_gqa=gqa
            )  # [1, H, n, D]
            # The canvas: the prompt as the decoder reads it now (a sliding layer's kept window),
            # then the canvas, in LeanStep's buffers for the steps after this one.
            prompt_k, prompt_v = _layer_kv(self.cache, i)
            held = prompt_k.shape[-2]
            buf_k = torch.empty(
                (1, spec.kv_heads, held + C, spec.head_dim), dtype=k.dtype, device=device
            )
            buf_v = torch.empty_like(buf_k)
            buf_k[:, :, :held].copy_(prompt_k)
            buf_v[:, :, :held].copy_(prompt_v)
            buf_k[:, :, held:].copy_(k[:, :, n:])
            buf_v[:, :, held:].copy_(v[:, :, n:])
            self.keys.append(buf_k)
            self.values.append(buf_v)
            canvas_attn = F.scaled_dot_product_attention(
                q[:, :, n:], buf_k, buf_v, scale=1.0, enable_gqa=gqa
            )  # [1, H, C, D]
            attn = torch.cat([new_attn, canvas_attn], dim=2)  # [1, H, n + C, D]
            scalar = torch.cat([enc_spec.layer_scalar.expand(n), spec.layer_scalar.expand(C)]).view(
                1, n + C, 1
            )
            h = after_attention(dec, replace(spec, layer_scalar=scalar), h, attn)
        h = _rms(
            h[:, n:], dec.final_norm, eps
        )  # the canvas rows; the new tokens' K/V were the point
        logits = dec.mm(h, dec.lm_head).float()  # [1, C, V]
        if dec.softcap is not None:
            logits = torch.tanh(logits / dec.softcap) * dec.softcap
        return logits
