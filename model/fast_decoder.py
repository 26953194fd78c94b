"""A lean CPU decoder step for DiffusionGemma: the canvas's logits against a fixed prompt KV cache.

It computes what `DiffusionGemmaForBlockDiffusion(decoder_input_ids=..., past_key_values=cache, ...)`
computes for one canvas (transformers 5.x, `modeling_diffusion_gemma.py`), reading the model's own
weights, without HF's per-call generic work: no mask building (the decoder's mask is all-ones), no
output dataclasses, no cache object calls, and no per-step `torch.cat` of the prompt KV (the prompt KV is
copied once per canvas into a buffer whose tail the canvas's K/V overwrite each step). It never writes
the cache. Models it does not cover (several experts, softcapped attention, clipped linears) get
`lean_unsupported(model) -> reason`, and the caller keeps HF's forward, which stays the reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache

# Set DIFFGEM_LEAN_DECODER=0 to force HF's forward everywhere (the reference path, for A/B runs).
ENV_SWITCH = "DIFFGEM_LEAN_DECODER"
_SMALLEST_NORMAL = torch.finfo(torch.float32).tiny
# The lean step's matmul precision: DIFFGEM_LEAN_MATMUL=fp32|bf16|int8|auto (auto: bf16 where the CPU
# multiplies bf16 natively, else fp32; see matmul_precision).
MATMUL_SWITCH = "DIFFGEM_LEAN_MATMUL"
MATMUL_PRECISIONS = ("fp32", "bf16", "int8")


def lean_unsupported(model) -> str | None:
    """Why the lean step cannot stand in for this model's decoder forward (None: it can)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"{ENV_SWITCH}=0"
    if model.device.type != "cpu":
        return f"device {model.device.type}"
    if type(model).__name__ != "DiffusionGemmaForBlockDiffusion":
        return f"architecture {type(model).__name__}"
    tc = model.config.text_config
    if tc.num_experts != 1 or tc.top_k_experts != 1:
        return f"{tc.num_experts} experts (top {tc.top_k_experts})"
    if getattr(tc, "attn_logit_softcapping", None) is not None:
        return "attention softcapping"
    if getattr(tc, "attention_bias", False):
        return "attention bias"
    if model.config._attn_implementation not in ("sdpa", "eager"):
        return f"attention {model.config._attn_implementation}"
    if model.training:
        return "training mode"
    # The step reads plain float32 weights: a bf16 model (HF's norms upcast, ours would not) or
    # replaced linears (bitsandbytes, FP8) keep HF's forward.
    if model.dtype != torch.float32:
        return f"dtype {model.dtype}"
    linears = [m for m in model.model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    if any(type(m) is not torch.nn.Linear or m.weight.dtype != torch.float32 for m in linears):
        return "quantised linear layers"
    return None


def _rms(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """DiffusionGemmaRMSNorm, op for op (torch.pow, not rsqrt, as the HF module does)."""
    out = x * torch.pow(x.pow(2).mean(-1, keepdim=True) + eps, -0.5)
    return out * weight if weight is not None else out


def _layer_kv(cache: Cache, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values a decoder layer attends to: what the cache layer holds (for sliding layers,
    only the window DynamicSlidingWindowLayer kept), as HF's decoder attention reads them."""
    layer = cache.layers[index]
    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    assert isinstance(keys, torch.Tensor) and isinstance(values, torch.Tensor), type(layer)
    return keys, values


def _prepack_int8(weight: torch.Tensor) -> object:
    """fbgemm's packed int8 weight: symmetric, one scale per output channel."""
    w = weight.detach().float().contiguous()
    scale = (w.abs().amax(dim=1).clamp(min=1e-12) / 127).double()
    zero = torch.zeros_like(scale, dtype=torch.long)
    q = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(q, None)


# Rows a step multiplies at once (a 32-token canvas): the batch-size hint oneDNN packs weights for.
# Any row count multiplies correctly against a packed weight; this one sets the blocking it tunes.
PACK_ROWS = 32


def _to_bf16(weight: torch.Tensor) -> torch.Tensor:
    """The weight in bf16, packed in oneDNN's blocked layout where this torch build can.

    A plain bf16 weight is re-laid-out for the AMX/AVX512-BF16 kernels on every F.linear call; packed
    once (what inductor's CPU freezing does: torch/_inductor/fx_passes/mkldnn_fusion.py), a
    32-row matmul of the step's shapes took 0.55-0.65x the time, with bit-identical results
    (bench/speed.md). The private ops are checked against F.linear here, once: a build without them,
    or one where they disagree, keeps the plain weight.
    """
    plain = weight.detach().to(torch.bfloat16).contiguous()
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(plain, PACK_ROWS)
        probe = torch.randn(1, 3, plain.shape[1], generator=torch.Generator().manual_seed(0))
        probe = probe.to(torch.bfloat16)
        if torch.equal(_onednn_linear(probe, packed), F.linear(probe, plain)):
            return packed
    except (AttributeError, NotImplementedError, RuntimeError):
        pass
    return plain


# oneDNN builds (JIT-compiles) a bf16 matmul for each new row count: 4-5 ms per weight shape the
# first time, 0.5 ms after (measured on the encoder's 384x2048 weight at 373 rows). A prompt encode's
# row count is new at almost every new place in a file, which cost a cold keystroke ~20 ms; rounded up
# to a multiple of ROW_BUCKET (zero rows, sliced off: each row of a matmul is its own), the shapes
# repeat. Steps (32 canvas rows, at most 48 with a folded encode) keep their own shapes.
ROW_BUCKET = 64
PAD_ABOVE_ROWS = 48


def _pad_rows(x: torch.Tensor) -> torch.Tensor:
    rows = x.shape[-2]
    if rows <= PAD_ABOVE_ROWS or rows % ROW_BUCKET == 0:
        return x
    return F.pad(x, (0, 0, 0, ROW_BUCKET - rows % ROW_BUCKET))


def _onednn_linear(x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@dataclass
class _Layer:
    sliding: bool
    heads: int
    kv_heads: int
    head_dim: int
    qkv: torch.Tensor  # [(H + 2·KV)·D or (H + KV)·D, hidden]: q, k (and v) projections stacked
    o: torch.Tensor
    q_norm: torch.Tensor
    k_norm: torch.Tensor
    ln_in: torch.Tensor
    ln_post_attn: torch.Tensor
    ln_pre_ff: torch.Tensor
    ln_post_ff: torch.Tensor
    ln_post_ff1: torch.Tensor
    ln_pre_ff2: torch.Tensor
    ln_post_ff2: torch.Tensor
    gate_up: torch.Tensor  # [2·I, hidden] dense MLP, gate then up
    down: torch.Tensor
    expert_gate_up: torch.Tensor  # [2·I_moe, hidden]
    expert_down: torch.Tensor
    expert_weight: (
        torch.Tensor
    )  # [] the router's weight: softmax over one expert is 1, times its scale
    layer_scalar: torch.Tensor


class LeanDecoder:
    """The decoder's weights, gathered once per model (q/k/v and gate/up stacked for one matmul each)."""

    def __init__(self, model, *, matmul: str | None = None):
        """`matmul`: the matmuls' precision, `fp32`, `bf16` or `int8` (None: `matmul_precision()`)."""
        reason = lean_unsupported(model)
        assert reason is None, reason
        dec = model.model.decoder
        tc = model.config.text_config
        self.model = model
        self.eps = tc.rms_norm_eps
        self.act = dec.layers[0].mlp.act_fn
        self.layer_types = list(tc.layer_types)
        self.embed = dec.embed_tokens.weight  # [V, hidden]
        self.embed_scale = dec.embed_tokens.embed_scale.to(self.embed.dtype)
        self.lm_head = model.lm_head.weight  # [V, hidden] (tied to embed in the checkpoint)
        self.final_norm = dec.norm.weight
        self.softcap = model.final_logit_softcapping
        sc = dec.self_conditioning
        self.sc_pre_norm = sc.pre_norm.weight
        self.sc_gate_up = torch.cat([sc.gate_proj.weight, sc.up_proj.weight]).contiguous()
        self.sc_down = sc.down_proj.weight
        self.rotary = dec.rotary_emb
        self.layers = [self._layer(layer) for layer in dec.layers[: tc.num_hidden_layers]]
        self.matmul = matmul_precision() if matmul is None else matmul
        assert self.matmul in MATMUL_PRECISIONS, self.matmul
        # Every matmul weight in the chosen form, keyed by the fp32 tensor's id; norms, residuals,
        # attention and the logits stay float32 (as autocast would keep them).
        self._packed: dict[int, object] = {}
        self._soft_packed: object | None = None
        if self.matmul != "fp32":
            convert = _prepack_int8 if self.matmul == "int8" else _to_bf16
            for w in self.matmul_weights():
                self._packed[id(w)] = convert(w)
            # Its own entry: lm_head is the embedding itself when tied, used the other way round.
            self._soft_packed = convert(self.embed.t())
        # oneDNN's bf16 kernels (AMX TDPBF16PS, AVX512 VDPBF16PS) do not consult MXCSR and read
        # denormal inputs as zero (Intel SDM), so the soft embedding skips the explicit flush: same
        # result bits, and no microcode assists (measured: 0.29 ms either way, the flush ~0.4 ms).
        self.soft_embed_reads_denormals_as_zero = (
            isinstance(self._soft_packed, torch.Tensor) and self._soft_packed.is_mkldnn
        )

    def matmul_weights(self) -> list[torch.Tensor]:
        """Every weight a step multiplies by (the soft embedding's aside)."""
        weights = [self.sc_gate_up, self.sc_down, self.lm_head]
        for spec in self.layers:
            weights += [spec.qkv, spec.o, spec.gate_up, spec.down]
            weights += [spec.expert_gate_up, spec.expert_down]
        return weights

    def warm_row_buckets(self, max_rows: int) -> None:
        """Build oneDNN's bf16 matmuls for every padded row count up to `max_rows` (see ROW_BUCKET)
        with each layer weight's shape, so that no prompt encode pays for building them (~0.3 s once,
        at load, for 512 rows)."""
        if self.matmul != "bf16":
            return
        by_shape: dict[tuple[int, ...], torch.Tensor] = {}
        for spec in self.layers:
            for w in (spec.qkv, spec.o, spec.gate_up, spec.down):
                by_shape.setdefault(tuple(w.shape), w)
            for w in (spec.expert_gate_up, spec.expert_down):
                by_shape.setdefault(tuple(w.shape), w)
        with torch.no_grad():
            for rows in range(ROW_BUCKET, max_rows + 1, ROW_BUCKET):
                for weight in by_shape.values():
                    self.mm(torch.zeros(1, rows, weight.shape[1]), weight)

    def mm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x @ weight.T in the chosen precision (float32 out); weights it did not convert stay fp32."""
        packed = self._packed.get(id(weight))
        return F.linear(x, weight) if packed is None else self._mm_packed(x, packed)

    def soft_embed(self, probs: torch.Tensor) -> torch.Tensor:
        """probs @ embed ([1, C, V] -> [1, C, hidden]), as the decoder's self-conditioning does."""
        if self._soft_packed is None:
            return torch.matmul(probs, self.embed)
        return self._mm_packed(probs, self._soft_packed)

    def _mm_packed(self, x: torch.Tensor, packed: object) -> torch.Tensor:
        if self.matmul == "bf16":
            assert isinstance(packed, torch.Tensor)
            rows = x.shape[-2]
            x = _pad_rows(x.to(torch.bfloat16))
            out = _onednn_linear(x, packed) if packed.is_mkldnn else F.linear(x, packed)
            return out[..., :rows, :].float()
        return torch.ops.quantized.linear_dynamic(x, packed, True)

    @staticmethod
    def _layer(layer) -> _Layer:
        attn = layer.self_attn
        heads = attn.q_proj.out_features // attn.head_dim
        kv_heads = attn.k_proj.out_features // attn.head_dim
        projections = [attn.q_proj.weight, attn.k_proj.weight]
        if attn.v_proj is not None:
            projections.append(attn.v_proj.weight)
        experts = layer.experts
        # Router over one expert: softmax of one score is exactly 1 and renormalising keeps it 1, so
        # the expert's weight is per_expert_scale[0] (DiffusionGemmaTextRouter.forward).
        return _Layer(
            sliding=attn.v_proj is not None,
            heads=heads,
            kv_heads=kv_heads,
            head_dim=attn.head_dim,
            qkv=torch.cat(projections).contiguous(),
            o=attn.o_proj.weight,
            q_norm=attn.q_norm.weight,
            k_norm=attn.k_norm.weight,
            ln_in=layer.input_layernorm.weight,
            ln_post_attn=layer.post_attention_layernorm.weight,
            ln_pre_ff=layer.pre_feedforward_layernorm.weight,
            ln_post_ff=layer.post_feedforward_layernorm.weight,
            ln_post_ff1=layer.post_feedforward_layernorm_1.weight,
            ln_pre_ff2=layer.pre_feedforward_layernorm_2.weight,
            ln_post_ff2=layer.post_feedforward_layernorm_2.weight,
            gate_up=torch.cat([layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight]).contiguous(),
            down=layer.mlp.down_proj.weight,
            expert_gate_up=experts.gate_up_proj[0],
            expert_down=experts.down_proj[0],
            expert_weight=layer.router.per_expert_scale[0],
            layer_scalar=layer.layer_scalar,
        )

    def bind(self, cache: Cache, canvas_length: int) -> LeanStep:
        """A step function for canvases of `canvas_length` after the tokens in `cache` (read, never written)."""
        return LeanStep(self, cache, canvas_length)


class LeanStep:
    """One canvas's decoder step: logits [1, C, V] (float32) from canvas ids and self-conditioning logits.

    The prompt KV is copied once into `[1, KV, P + C, D]` buffers per layer; each step writes the canvas's
    K/V into the last C slots, so attention reads one contiguous tensor without a per-step concatenation.
    """

    def __init__(self, dec: LeanDecoder, cache: Cache, canvas_length: int):
        self.dec = dec
        self.C = canvas_length
        device = dec.embed.device
        dtype = dec.embed.dtype
        prompt_len = cache.get_seq_length()
        # Canvas positions continue after the prompt, as the sampler passes them to HF's forward.
        positions = torch.arange(prompt_len, prompt_len + canvas_length, device=device)[None]
        probe = torch.empty((1, canvas_length, 1), dtype=dtype, device=device)
        self.rope: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for kind in set(dec.layer_types):
            cos, sin = dec.rotary(probe, positions, kind)  # [1, C, D] each
            self.rope[kind] = (cos[:, :, None, :], sin[:, :, None, :])  # [1, C, 1, D]
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for i, spec in enumerate(dec.layers):
            cached_keys, cached_values = _layer_kv(cache, i)
            held = cached_keys.shape[-2]
            k = torch.empty(
                (1, spec.kv_heads, held + canvas_length, spec.head_dim), dtype=dtype, device=device
            )
            v = torch.empty_like(k)
            k[:, :, :held].copy_(cached_keys)
            v[:, :, :held].copy_(cached_values)
            self.keys.append(k)
            self.values.append(v)

    @torch.no_grad()
    def __call__(
        self, canvas: torch.Tensor, self_conditioning: torch.Tensor | None = None
    ) -> torch.Tensor:
        # Denormals: a sharp softmax (logits / t, t = 0.1-0.3) leaves tens of thousands of
        # probabilities below float32's smallest normal, and every multiply by one takes a
        # microcode assist — measured 49 ms instead of 2.2 ms for the soft-embedding matmul. They
        # are ~1e-38 of a sum of order 1e-2, so flushing them changes no result bit that matters
        # (the logits test and the real-holes test hold it to HF's forward).
        torch.set_flush_denormal(True)  # this thread's MXCSR (FTZ/DAZ): the layers' ops too
        try:
            return self._forward(canvas, self_conditioning)
        finally:
            torch.set_flush_denormal(False)

    def _forward(
        self, canvas: torch.Tensor, self_conditioning: torch.Tensor | None
    ) -> torch.Tensor:
        dec = self.dec
        eps = dec.eps
        h = F.embedding(canvas, dec.embed) * dec.embed_scale  # [1, C, hidden]
        if self_conditioning is not None:
            # Soft embeddings of the previous step's distribution (DiffusionGemmaDecoderModel.forward).
            probs = self_conditioning.softmax(dim=-1, dtype=torch.float32).to(dec.embed.dtype)
            if not dec.soft_embed_reads_denormals_as_zero:
                # Other intra-op threads keep their own MXCSR: zero the denormals explicitly.
                probs = probs.masked_fill_(probs < _SMALLEST_NORMAL, 0.0)  # [1, C, V]
            soft = dec.soft_embed(probs) * dec.embed_scale  # [1, C, hidden]
            normed = _rms(soft, dec.sc_pre_norm, eps)
            gate, up = dec.mm(normed, dec.sc_gate_up).chunk(2, dim=-1)
            h = h + dec.mm(dec.act(gate) * up, dec.sc_down)
        # Without self-conditioning the signal is zeros and the MLP of zeros is zero (no biases):
        # post_norm(embeds + 0) == post_norm(embeds).
        h = _rms(h, None, eps)
        for i, spec in enumerate(dec.layers):
            h = self._layer(i, spec, h)
        h = _rms(h, dec.final_norm, eps)
        logits = dec.mm(h, dec.lm_head).float()  # [1, C, V]
        if dec.softcap is not None:
            logits = torch.tanh(logits / dec.softcap) * dec.softcap
        return logits

    def _layer(self, i: int, spec: _Layer, h: torch.Tensor) -> torch.Tensor:
        C = self.C
        cos, sin = self.rope[self.dec.layer_types[i]]
        q, k, v = project_qkv(self.dec, spec, h, cos, sin)
        keys, values = self.keys[i], self.values[i]
        keys[:, :, -C:].copy_(k)
        values[:, :, -C:].copy_(v)
        # The decoder's mask is all-ones (bidirectional over prompt + canvas); scaling is 1.0.
        attn = F.scaled_dot_product_attention(
            q, keys, values, scale=1.0, enable_gqa=spec.heads != spec.kv_heads
        )  # [1, H, C, D]
        return after_attention(self.dec, spec, h, attn)


def project_qkv(
    dec: LeanDecoder, spec: _Layer, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A layer's normed, rotated q [1, H, n, D] and k, v [1, KV, n, D] for hidden states h [1, n, hidden]."""
    eps, n, D = dec.eps, h.shape[1], spec.head_dim
    x = _rms(h, spec.ln_in, eps)
    qkv = dec.mm(x, spec.qkv)  # [1, n, (H + 2·KV)·D]
    q_end, k_end = spec.heads * D, (spec.heads + spec.kv_heads) * D
    q = qkv[..., :q_end].view(1, n, spec.heads, D)
    k_raw = qkv[..., q_end:k_end].view(1, n, spec.kv_heads, D)
    # Full-attention layers have no v_proj: values are the raw keys (DiffusionGemma*TextAttention).
    v = qkv[..., k_end:].view(1, n, spec.kv_heads, D) if spec.sliding else k_raw
    q = _rms(q, spec.q_norm, eps)
    q = q * cos + _rotate_half(q) * sin
    k = _rms(k_raw, spec.k_norm, eps)
    k = k * cos + _rotate_half(k) * sin
    v = _rms(v, None, eps)
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def after_attention(
    dec: LeanDecoder, spec: _Layer, h: torch.Tensor, attn: torch.Tensor
) -> torch.Tensor:
    """The rest of a layer from its attention output [1, H, n, D]: o_proj, dense MLP + expert, norms."""
    eps, n = dec.eps, h.shape[1]
    attn = dec.mm(attn.transpose(1, 2).reshape(1, n, spec.heads * spec.head_dim), spec.o)
    h = h + _rms(attn, spec.ln_post_attn, eps)
    x = _rms(h, spec.ln_pre_ff, eps)
    gate, up = dec.mm(x, spec.gate_up).chunk(2, dim=-1)
    dense = _rms(dec.mm(dec.act(gate) * up, spec.down), spec.ln_post_ff1, eps)
    x2 = _rms(h, spec.ln_pre_ff2, eps)
    gate, up = dec.mm(x2, spec.expert_gate_up).chunk(2, dim=-1)
    expert = dec.mm(dec.act(gate) * up, spec.expert_down) * spec.expert_weight
    moe = _rms(expert, spec.ln_post_ff2, eps)
    h = h + _rms(dense + moe, spec.ln_post_ff, eps)
    return h * spec.layer_scalar


def step_flops(model, prompt_len: int, canvas_length: int, self_conditioning: bool = True) -> int:
    """Multiply-adds × 2 of one decoder step over a canvas after `prompt_len` cached tokens."""
    tc = model.config.text_config
    hidden, inter, moe = tc.hidden_size, tc.intermediate_size, tc.moe_intermediate_size
    vocab, C = tc.vocab_size, canvas_length
    total = 2 * C * hidden * vocab  # lm head
    if self_conditioning:
        total += 2 * C * vocab * hidden + 2 * C * 3 * hidden * inter  # soft embeddings + its MLP
    for layer in model.model.decoder.layers[: tc.num_hidden_layers]:
        attn = layer.self_attn
        D = attn.head_dim
        heads = attn.q_proj.out_features // D
        proj = attn.q_proj.out_features + attn.k_proj.out_features
        proj += attn.v_proj.out_features if attn.v_proj is not None else 0
        total += 2 * C * hidden * (proj + heads * D)  # q/k/v and o
        total += 2 * 2 * C * heads * D * (prompt_len + C)  # scores and weighted values
        total += 2 * C * 3 * hidden * inter + 2 * C * 3 * hidden * moe  # dense MLP + expert
    return total


def cpu_has_native_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16 in /proc/cpuinfo: bf16 matmuls run natively, not emulated through fp32."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f" {flag}" in flags for flag in ("amx_bf16", "avx512_bf16"))


def matmul_precision() -> str:
    """The lean step's matmul precision: DIFFGEM_LEAN_MATMUL if it names one, else bf16 where the CPU
    has AMX-BF16 or AVX512-BF16 and fp32 elsewhere (bf16 emulated through fp32 is slower than fp32).

    bf16 keeps float32 activations between matmuls (norms, residuals, attention, logits), as
    torch.autocast does. On the embedded model's holes it kept exact match (validation 43 vs 43 of 713,
    test 25 vs 24 of 675: bench/precision_eval.md) and took the step from 19.4 to 11.5 ms on an AMX CPU
    (bench/speed.md, floor table). int8 held exact match too but encodes long prompts slower than
    AMX bf16, so it stays a choice, not a default.
    """
    chosen = os.environ.get(MATMUL_SWITCH, "auto")
    if chosen in MATMUL_PRECISIONS:
        return chosen
    return "bf16" if cpu_has_native_bf16() else "fp32"


def default_threads() -> int:
    """Intra-op threads for the worker: DIFFGEM_THREADS if set, else one core less than this process
    may use, at most 4 (at least 1).

    Measured side by side (bench/speed.md, "Side by side"): at load ~1, one thread answered a keystroke
    in 95 ms p50 vs 121 ms for two sleeping (OMP_WAIT_POLICY=PASSIVE) threads, step 34.5 vs 47.7 ms:
    waking a sleeping team costs more than the second core gives on 32-row matmuls. Under load ~10 two
    sleeping threads won (1 thread 1.56x slower), and two spinning ones lost ~10x; so one core less,
    and PASSIVE (diffgem_model/__init__.py) for anyone who sets DIFFGEM_THREADS higher.
    """
    if os.environ.get("DIFFGEM_THREADS", "").isdigit() and int(os.environ["DIFFGEM_THREADS"]) > 0:
        return int(os.environ["DIFFGEM_THREADS"])
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return min(4, max(1, usable - 1))
