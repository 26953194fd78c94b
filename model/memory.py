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
    total = 0
    for layer_type in text.layer_types:
        if layer_type == "full_attention":
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
