"""Fused sampling step over [C, V] denoiser logits: sample, argmax, confidence, entropy, logsumexp.
Tensors in, a SamplingStats of tensors out; no model, engine or LSP knowledge. Triton is optional.

Semantics follow transformers' DiffusionGemma sampler (`generation_diffusion_gemma.py`,
`_denoising_step`): processed = logits / T (the model already applied its final-logit softcap,
so the engine passes softcap=None); the sample is drawn from softmax(processed); argmax and the
entropy (nats, `Categorical(logits=processed).entropy()`) are of the same tempered distribution.

Randomness is a counter-based hash of (seed, row * V + col), computed identically here in torch
and in the Triton kernel, so kernel and reference sample the same ids (Gumbel-max trick:
argmax(y + g), g = -log(-log u), which is an exact draw from softmax(y)).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import torch

MASK32 = 0xFFFFFFFF
_DEFAULT_BLOCK = 2048
_DEFAULT_WARPS = 8


@dataclass(frozen=True)
class SamplingStats:
    """Per-row results of one sampling step; the shape is the logits' shape without the vocab dim."""

    sampled: torch.Tensor  # [C] int64, a draw from softmax(capped logits / T)
    argmax: torch.Tensor  # [C] int64, lowest index among ties
    confidence: torch.Tensor  # [C] float32, p(argmax) of the tempered distribution
    entropy: torch.Tensor  # [C] float32, nats, of the tempered distribution
    logsumexp: torch.Tensor  # [C] float32, of the tempered logits


def _mix32(x: int) -> int:
    """lowbias32-style integer finaliser on Python ints (seed -> kernel keys)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def hash_keys(seed: int) -> tuple[int, int]:
    """The two 31-bit keys a seed gives the hash (31 bits: they travel as int32 kernel arguments)."""
    return _mix32(seed) & 0x7FFFFFFF, _mix32(seed ^ 0x9E3779B9) & 0x7FFFFFFF


def step_seed(seed: int, step: int) -> int:
    """A fresh seed per denoising step, so each step draws independent noise from one user seed."""
    return _mix32(_mix32(seed) ^ (step * 0x9E3779B1))


def _hash_uniform_torch(idx: torch.Tensor, key_a: int, key_b: int) -> torch.Tensor:
    """uint32 hash of int64 counters, emulated in int64 (multipliers < 2^31 so products fit)."""
    h = idx ^ key_a
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & MASK32
    h = h ^ key_b
    h = h ^ (h >> 15)
    h = (h * 0x5BD1E995) & MASK32
    h = h ^ (h >> 16)
    return ((h >> 9).to(torch.float32) + 0.5) * 2.0**-23


def gumbel_noise(
    seed: int, rows: int, cols: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard Gumbel noise [rows, cols] (float32) for position (row, col), as the kernel draws it."""
    key_a, key_b = hash_keys(seed)
    r = torch.arange(rows, device=device, dtype=torch.int64)[:, None]
    c = torch.arange(cols, device=device, dtype=torch.int64)[None, :]
    u = _hash_uniform_torch((r * cols + c) & MASK32, key_a, key_b)  # [rows, cols]
    return -torch.log(-torch.log(u))


def _check_args(logits: torch.Tensor, temperature: float, softcap: float | None) -> None:
    assert logits.dim() >= 1 and logits.shape[-1] > 0, (
        f"logits need a vocab dim, got {logits.shape}"
    )
    assert logits.dtype in (torch.float32, torch.float16, torch.bfloat16), logits.dtype
    assert temperature > 0, f"temperature must be > 0, got {temperature}"
    assert softcap is None or softcap > 0, f"softcap must be None or > 0, got {softcap}"


def fused_sampling_step_reference(
    logits: torch.Tensor, temperature: float, softcap: float | None = None, seed: int = 0
) -> SamplingStats:
    """Plain-torch reference of `fused_sampling_step` (same signature, same samples)."""
    _check_args(logits, temperature, softcap)
    lead, vocab = logits.shape[:-1], logits.shape[-1]
    x = logits.reshape(-1, vocab).float()  # [C, V]
    if softcap is not None:
        x = softcap * torch.tanh(x / softcap)
    # Multiply by the fp32 reciprocal, exactly as the kernel does, so argmax ties agree bit for bit.
    y = x * torch.tensor(1.0 / temperature, dtype=torch.float32, device=x.device)  # [C, V]
    lse = torch.logsumexp(y, dim=-1)  # [C]
    logp = y - lse[:, None]  # [C, V]
    p = logp.exp()
    entropy = (-torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)).clamp_min(0.0)  # [C]
    argmax = y.argmax(-1)  # [C]
    confidence = p.gather(-1, argmax[:, None]).squeeze(-1)
    sampled = (y + gumbel_noise(seed, y.shape[0], vocab, y.device)).argmax(-1)
    return SamplingStats(
        sampled=sampled.reshape(lead),
        argmax=argmax.reshape(lead),
        confidence=confidence.reshape(lead),
        entropy=entropy.reshape(lead),
        logsumexp=lse.reshape(lead),
    )


@functools.cache
def _kernels():
    # Imported on first use only: the interpreter switch (TRITON_INTERPRET) is read when the
    # kernels are decorated, and the CPU path must never need Triton.
    from . import _sampling_kernel

    return _sampling_kernel


@functools.cache
def triton_available() -> bool:
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        _kernels()
    except ImportError:
        return False
    return True


def _auto_splits(rows: int, vocab: int, block: int, device: torch.device) -> int:
    """Split the vocabulary until the grid has a few programs per SM (one row per SM is too few)."""
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    want = -(-4 * sms // rows)
    return max(1, min(want, -(-vocab // block)))


def fused_sampling_step(
    logits: torch.Tensor,
    temperature: float,
    softcap: float | None = None,
    seed: int = 0,
    *,
    num_splits: int | None = None,
    block: int | None = None,
    num_warps: int | None = None,
) -> SamplingStats:
    """Triton launcher: reads each row of `logits` [..., V] once. num_splits=None picks a split."""
    _check_args(logits, temperature, softcap)
    k = _kernels()
    lead, vocab = logits.shape[:-1], logits.shape[-1]
    x = logits.reshape(-1, vocab)  # [C, V]
    if x.stride(-1) != 1:
        x = x.contiguous()
    rows, dev = x.shape[0], x.device
    assert rows * vocab < 2**31, f"int32 counters: canvas {rows} x vocab {vocab} is too large"
    block = block or _DEFAULT_BLOCK
    splits = num_splits or _auto_splits(rows, vocab, block, dev)
    # Whole blocks per split, and no empty split.
    cols_per_split = -(-vocab // splits)
    cols_per_split = -(-cols_per_split // block) * block
    splits = -(-vocab // cols_per_split)
    key_a, key_b = hash_keys(seed)

    sampled = torch.empty(rows, dtype=torch.int64, device=dev)
    argmax = torch.empty(rows, dtype=torch.int64, device=dev)
    confidence = torch.empty(rows, dtype=torch.float32, device=dev)
    entropy = torch.empty(rows, dtype=torch.float32, device=dev)
    lse = torch.empty(rows, dtype=torch.float32, device=dev)
    outs = (sampled, argmax, confidence, entropy, lse)
    if rows > 0:
        finalize = splits == 1
        n_part = 1 if finalize else rows * splits
        part_f = [torch.empty(n_part, dtype=torch.float32, device=dev) for _ in range(3)]
        part_a = torch.empty(n_part, dtype=torch.int32, device=dev)
        part_gv = torch.empty(n_part, dtype=torch.float32, device=dev)
        part_gi = torch.empty(n_part, dtype=torch.int32, device=dev)
        parts = (*part_f, part_a, part_gv, part_gi)
        k._fused_sampling_kernel[(rows, splits)](
            x,
            x.stride(0),
            *outs,
            *parts,
            vocab,
            cols_per_split,
            1.0 / temperature,
            float(softcap or 0.0),
            2.0 / softcap if softcap else 0.0,
            key_a,
            key_b,
            HAS_SOFTCAP=softcap is not None,
            FINALIZE=finalize,
            BLOCK=block,
            num_warps=num_warps or _DEFAULT_WARPS,
        )
        if not finalize:
            block_s = max(16, 1 << (splits - 1).bit_length())
            k._fused_sampling_reduce_kernel[(rows,)](*parts, *outs, splits, BLOCK_S=block_s)
    return SamplingStats(*(o.reshape(lead) for o in outs))


def sampling_step(
    logits: torch.Tensor, temperature: float, softcap: float | None = None, seed: int = 0
) -> SamplingStats:
    """Dispatcher: the Triton kernel for CUDA logits when Triton imports, else the torch reference."""
    if logits.is_cuda and triton_available():
        return fused_sampling_step(logits, temperature, softcap, seed)
    return fused_sampling_step_reference(logits, temperature, softcap, seed)
