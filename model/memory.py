"""Memory arithmetic for a DiffusionGemma config: KV bytes per token, weight bytes per precision, free memory.

Boundary: reads configs, module trees and the device's free memory; it never loads weights or runs a model
(the weight count comes from a model built on the `meta` device, which allocates nothing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

# Share of the memory left free after the weights that the prompt cache may take by default. The rest is
# for activations: one decoder step holds several [canvas x vocab] fp32 logits (256 MiB each at full size).
CACHE_SHARE = {"cuda": 0.5, "cpu": 0.25}


def _text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Encoder KV cache bytes per prompt token, as the prompt cache stores it.

    The prompt cache keeps every layer's keys and values for every token (sliding-window layers too, so that
    it can roll back past the window: prompt_cache.RollbackCache), so each layer counts in full.
    Gemma 4's full-attention layers have their own head dim and KV head count (`global_head_dim`,
    `num_global_key_value_heads`); when absent they equal the sliding ones.
    """
    text = _text_config(config)
    size = torch.empty((), dtype=dtype).element_size()
    per_layer = getattr(text, "per_layer_config", None)
    total = 0
    for i, layer_type in enumerate(text.layer_types):
        if (
            per_layer is not None
        ):  # transformers >= 5.17 resolves the global/sliding split per layer
            heads, dim = per_layer[i].num_key_value_heads, per_layer[i].head_dim
        elif layer_type == "full_attention":
            heads = getattr(text, "num_global_key_value_heads", None) or text.num_key_value_heads
            dim = getattr(text, "global_head_dim", None) or text.head_dim
        else:
            heads, dim = text.num_key_value_heads, text.head_dim
        total += 2 * heads * dim * size
    return total


def free_bytes(device: torch.device | str) -> int:
    """Memory the device has free now: CUDA's own count, or the OS's MemAvailable for the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def total_bytes(device: torch.device | str) -> int:
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[1])
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class CacheBudget:
    bytes: int
    bytes_per_token: int
    source: str  # "free memory" | "setting"

    @property
    def tokens(self) -> int:
        return self.bytes // max(1, self.bytes_per_token)


def prompt_cache_budget(model: Any, cap_bytes: int | None = None) -> CacheBudget:
    """Bytes the prompt cache may hold: a share of the device's free memory, capped by a setting if given.

    `cap_bytes=0` disables the cache. Call after the weights are loaded, so that they are not counted as free.
    """
    per_token = kv_bytes_per_token(model.config, model.dtype)
    if cap_bytes == 0:
        return CacheBudget(0, per_token, "setting")
    device = torch.device(model.device)
    share = int(free_bytes(device) * CACHE_SHARE.get(device.type, 0.25))
    if cap_bytes is not None and cap_bytes < share:
        return CacheBudget(cap_bytes, per_token, "setting")
    return CacheBudget(share, per_token, "free memory")


# Bytes per parameter by where it sits and the precision it is loaded in (model/precision.py says which
# library quantises what). Block scales: FP8 one fp32 per 128x128 block; bitsandbytes nf4 one fp32 absmax per
# 64 weights; int8 one fp32 per output row (rounded into the 1.0).
BYTES_PER_PARAM = {
    "fp32": {"experts": 4.0, "linear": 4.0, "embeddings": 4.0, "other": 4.0},
    "bf16": {"experts": 2.0, "linear": 2.0, "embeddings": 2.0, "other": 2.0},
    "fp8": {"experts": 1 + 4 / 128**2, "linear": 1 + 4 / 128**2, "embeddings": 2.0, "other": 2.0},
    "int8": {"experts": 2.0, "linear": 1.0, "embeddings": 2.0, "other": 2.0},
    "int4": {"experts": 2.0, "linear": 0.5 + 4 / 64, "embeddings": 2.0, "other": 2.0},
}
CUDA_CONTEXT_BYTES = 600 << 20  # the CUDA context and kernels' workspace, before any tensor
PROMPT_TOKENS_RESERVED = (
    4096  # KV room for one long prompt (the `chat` layout's ~12,000 characters)
)


def parameter_groups(config: Any) -> dict[str, int]:
    """Parameter counts of a DiffusionGemma config by group, from a model built on the `meta` device."""
    from transformers import DiffusionGemmaForBlockDiffusion

    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion(config)
    groups = {"experts": 0, "linear": 0, "embeddings": 0, "other": 0}
    kind: dict[int, str] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            kind.setdefault(id(module.weight), "embeddings")
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            kind.setdefault(id(module.weight), "linear")
    for param in model.parameters():  # tied parameters are listed once
        group = kind.get(id(param)) or ("experts" if param.ndim == 3 else "other")
        groups[group] += param.numel()
    return groups


@dataclass(frozen=True)
class MemoryEstimate:
    precision: str
    device: str
    weights: int
    kv_cache: int
    activations: int
    overhead: int
    free: int
    total: int

    @property
    def need(self) -> int:
        return self.weights + self.kv_cache + self.activations + self.overhead

    @property
    def fits(self) -> bool:
        return self.need <= self.free

    def message(self) -> str:
        gib = 2**30
        head = (
            f"{self.precision} on {self.device}: needs {self.need / gib:.1f} GiB (weights "
            f"{self.weights / gib:.1f}, prompt KV {self.kv_cache / gib:.2f}, activations "
            f"{self.activations / gib:.2f}, runtime {self.overhead / gib:.2f}); the device has "
            f"{self.free / gib:.1f} GiB free of {self.total / gib:.1f}"
        )
        if self.fits:
            return head + "."
        return head + (
            ": it will not fit. Try a smaller precision (fp8 on compute capability >= 8.9 halves the "
            "experts; int8/int4 barely help this MoE), another GPU, or device cpu."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "device": self.device,
            "need_bytes": self.need,
            "weights_bytes": self.weights,
            "kv_cache_bytes": self.kv_cache,
            "activations_bytes": self.activations,
            "free_bytes": self.free,
            "total_bytes": self.total,
            "fits": self.fits,
            "message": self.message(),
        }


def estimate(config: Any, precision: str, device: str) -> MemoryEstimate:
    """What loading `config` at `precision` on `device` needs, against what the device has free now."""
    from .precision import resolve_precision

    precision = resolve_precision(precision, device)
    text = _text_config(config)
    groups = parameter_groups(config)
    weights = int(sum(n * BYTES_PER_PARAM[precision][g] for g, n in groups.items()))
    compute_dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    kv = kv_bytes_per_token(config, compute_dtype) * PROMPT_TOKENS_RESERVED
    canvas = getattr(config, "canvas_length", 256)
    # fp32 logits, the processed copy and the previous step's self-conditioning logits; tiles are small.
    activations = 3 * canvas * text.vocab_size * 4
    on_cuda = device.startswith("cuda")
    return MemoryEstimate(
        precision=precision,
        device=device,
        weights=weights,
        kv_cache=kv,
        activations=activations,
        overhead=CUDA_CONTEXT_BYTES if on_cuda else 0,
        free=free_bytes(device),
        total=total_bytes(device),
    )
