"""Encoder KV caches kept across requests, keyed by the token sequence they encode (LRU by bytes).

A request whose prompt shares a token prefix with a cached one crops that cache to the shared prefix and
encodes only the new tokens — with the `fim` layout a keystroke at the cursor re-encodes a few tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers import DynamicCache

# Below this many shared tokens a prompt is "another document": reusing would save nothing and would
# evict that document's cache.
MIN_SHARED_TOKENS = 8


@dataclass
class CacheStats:
    reused_tokens: int = 0
    encoded_tokens: int = 0


def _cache_bytes(cache: DynamicCache) -> int:
    total = 0
    for layer in cache.layers:
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def _shared_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def crop_to(cache: DynamicCache, length: int) -> bool:
    """Shorten a cache to its first `length` tokens; False if this cache cannot be cropped."""
    remove = cache.get_seq_length() - length
    if remove < 0:
        return False
    if remove:
        try:
            # A negative count means "remove this many" in every transformers 5.x release.
            cache.crop(-remove)
        except (ValueError, RuntimeError):
            return False
    return cache.get_seq_length() == length


class PromptCache:
    """LRU of (token ids -> encoder cache). `max_bytes=0` disables reuse (every prompt is encoded whole)."""

    def __init__(self, model, max_bytes: int):
        self.model = model
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], DynamicCache] = OrderedDict()
        self.hits = 0
        self.lookups = 0

    def clear(self) -> None:
        self._entries.clear()

    @property
    def nbytes(self) -> int:
        return sum(_cache_bytes(c) for c in self._entries.values())

    def encode(self, ids: list[int]) -> tuple[DynamicCache, CacheStats]:
        """Return a cache holding exactly `ids`, reusing the longest cached shared prefix."""
        key = tuple(ids)
        self.lookups += 1
        best_key, best_len = None, 0
        for cached_key in self._entries:
            shared = _shared_prefix(cached_key, key)
            if shared > best_len:
                best_key, best_len = cached_key, shared
        cache = None
        if best_key is not None and best_len >= MIN_SHARED_TOKENS and self.max_bytes > 0:
            cache = self._entries.pop(best_key)
            # An identical prompt still needs one fresh token: keep the last one out so the encoder
            # call below is never empty.
            best_len = min(best_len, len(ids) - 1)
            if not self._crop(cache, best_len):
                cache, best_len = None, 0
        if cache is None:
            cache, best_len = (
                DynamicCache(config=self.model.config.get_text_config(decoder=True)),
                0,
            )
        else:
            self.hits += 1
        self._run_encoder(cache, ids, best_len)
        if self.max_bytes > 0:
            self._entries[key] = cache
            self._evict()
        return cache, CacheStats(reused_tokens=best_len, encoded_tokens=len(ids) - best_len)

    def append(self, cache: DynamicCache, old_ids: list[int], new_ids: list[int]) -> None:
        """Encode committed canvas tokens after a prompt (multi-canvas fills); the entry stays keyed by the prompt."""
        self._run_encoder(cache, old_ids + new_ids, len(old_ids))

    def _crop(self, cache: DynamicCache, length: int) -> bool:
        return crop_to(cache, length)

    def _evict(self) -> None:
        while len(self._entries) > 1 and self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)

    @torch.no_grad()
    def _run_encoder(self, cache: DynamicCache, ids: list[int], start: int) -> None:
        model = self.model
        device = model.device
        new = torch.tensor([ids[start:]], dtype=torch.long, device=device)  # [1, n]
        positions = torch.arange(start, len(ids), dtype=torch.int32, device=device).unsqueeze(0)
        attention_mask = torch.ones((1, len(ids)), dtype=torch.bool, device=device)
        mask_mapping = model.model.encoder.create_masks_for_generate(
            config=model.config,
            inputs_embeds=torch.empty((1, new.shape[1], 0), dtype=model.dtype, device=device),
            attention_mask=attention_mask,
            past_key_values=cache,
            position_ids=positions,
        )
        model.model.encoder(
            input_ids=new,
            attention_mask=mask_mapping,
            past_key_values=cache,
            position_ids=positions,
        )
