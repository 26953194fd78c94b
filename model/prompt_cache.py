"""Encoder KV caches kept across requests, keyed by the token sequence they encode (LRU by bytes).

Boundary: owns cache entries, their rollback and their memory budget; it runs the encoder but never the
decoder. A request whose prompt shares a token prefix with a cached one rolls that cache back to the shared
prefix and encodes only the new tokens — with the `fim` layout a keystroke at the cursor re-encodes a few
tokens.

Sliding-window layers only keep their last `window - 1` keys (transformers' `DynamicSlidingWindowLayer`),
so once a prompt is longer than the window a plain `DynamicCache` cannot be cropped: 5.24 raises, and the
keys a shorter prompt needs are gone. `RollbackCache` records every key/value the sliding layers were
given, so a rollback to any length rebuilds exactly the window the layer would hold had it encoded only
that many tokens. The decoder still sees only the window (it reads `layer.keys`), so outputs are unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from .compat import encoder_masks, with_cache

# Below this many shared tokens a prompt is "another document": reusing would save nothing and would
# evict that document's cache.
MIN_SHARED_TOKENS = 8


@dataclass
class CacheStats:
    reused_tokens: int = 0
    encoded_tokens: int = 0


class RollbackCache(DynamicCache):
    """A DynamicCache that can be rolled back to any earlier length, sliding-window layers included."""

    def __init__(self, config: Any):
        super().__init__(config=config)
        # layer index -> (keys, values) of every token the layer was ever given, [B, H, T, D]
        self._history: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        layer = self.layers[layer_idx]
        if getattr(layer, "is_sliding", False):
            old = self._history.get(layer_idx)
            if old is None:
                self._history[layer_idx] = (key_states, value_states)
            else:
                self._history[layer_idx] = (
                    torch.cat([old[0], key_states], dim=-2),
                    torch.cat([old[1], value_states], dim=-2),
                )
        return super().update(key_states, value_states, layer_idx, *args, **kwargs)

    def rollback(self, length: int) -> None:
        """Forget everything after the first `length` tokens (0 < length <= current length)."""
        if not 0 < length <= self.get_seq_length():
            raise ValueError(f"cannot roll a {self.get_seq_length()}-token cache back to {length}")
        layers: list[Any] = list(self.layers)  # DynamicLayer / DynamicSlidingWindowLayer
        for idx, layer in enumerate(layers):
            if idx in self._history:
                keys, values = self._history[idx]
                keys, values = keys[..., :length, :], values[..., :length, :]
                self._history[idx] = (keys, values)
                # What DynamicSlidingWindowLayer.update keeps: the last `window - 1` tokens.
                start = max(0, length - (layer.sliding_window - 1))
                layer.keys, layer.values = keys[..., start:, :], values[..., start:, :]
                layer.cumulative_length = length
            else:
                layer.keys = layer.keys[..., :length, :]
                layer.values = layer.values[..., :length, :]

    @property
    def nbytes(self) -> int:
        total = 0
        for idx, layer in enumerate(self.layers):
            tensors = self._history.get(idx) or (
                getattr(layer, "keys", None),
                getattr(layer, "values", None),
            )
            for tensor in tensors:
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel() * tensor.element_size()
        return total


def crop_to(cache: DynamicCache, length: int) -> bool:
    """Shorten a cache to its first `length` tokens; False if this cache cannot be cropped."""
    if cache.get_seq_length() < length:
        return False
    if isinstance(cache, RollbackCache):
        if length < cache.get_seq_length():
            cache.rollback(length)
        return True
    remove = cache.get_seq_length() - length
    if remove:
        try:
            # A negative count means "remove this many" in every transformers 5.x release.
            cache.crop(-remove)
        except (ValueError, RuntimeError):
            return False
    return cache.get_seq_length() == length


def _shared_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PromptCache:
    """LRU of (token ids -> encoder cache). `max_bytes=0` disables reuse (every prompt is encoded whole)."""

    def __init__(self, model, max_bytes: int):
        self.model = model
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], RollbackCache] = OrderedDict()
        self.hits = 0
        self.lookups = 0
        self.reused_tokens = 0
        self.encoded_tokens = 0
        # Set by the engine where it is proven equal to HF's encoder (fast_encoder.LeanEncoder).
        self.lean_encoder: Any = None

    def clear(self) -> None:
        self._entries.clear()

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._entries.values())

    @property
    def token_hit_rate(self) -> float:
        """Share of all prompt tokens served from the cache rather than encoded."""
        return self.reused_tokens / max(1, self.reused_tokens + self.encoded_tokens)

    def encode(self, ids: list[int], *, count: bool = True) -> tuple[RollbackCache, CacheStats]:
        """Return a cache holding exactly `ids`, reusing the longest cached shared prefix.

        `count=False` (a prefill warming the cache ahead of a request, Engine.prefill) leaves the
        hit/lookup/token counters to the requests, so they keep saying how often a request found its
        prompt cached."""
        cache, stats, _pending = self._encode(ids, count=count, defer=0)
        return cache, stats

    def encode_deferred(
        self, ids: list[int], max_new: int
    ) -> tuple[RollbackCache, CacheStats, list[int]]:
        """As `encode`, but when at most `max_new` tokens are new, leave them to the caller: the cache
        holds the shared prefix and they come back as the third value (model/fold.py encodes them
        in the first decoder step). The entry is keyed by what the cache holds until `settle`."""
        return self._encode(ids, count=True, defer=max_new)

    def settle(self, cache: RollbackCache, ids: list[int]) -> None:
        """Key `cache`'s entry by `ids` once it holds them all (after a deferred encode ran)."""
        if cache.get_seq_length() != len(ids):
            return
        for key, entry in list(self._entries.items()):
            if entry is cache and key != tuple(ids):
                del self._entries[key]
                self._entries[tuple(ids)] = cache
                self._evict()
                return

    def _encode(
        self, ids: list[int], *, count: bool, defer: int
    ) -> tuple[RollbackCache, CacheStats, list[int]]:
        key = tuple(ids)
        self.lookups += count
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
            if not crop_to(cache, best_len):
                cache, best_len = None, 0
        if cache is None:
            cache, best_len = RollbackCache(self.model.config.get_text_config(decoder=True)), 0
        else:
            self.hits += count
        pending: list[int] = []
        if 0 < len(ids) - best_len <= defer and best_len > 0:
            pending, key = list(ids[best_len:]), key[:best_len]
        else:
            self._run_encoder(cache, ids, best_len)
        if count:
            self.reused_tokens += best_len
            self.encoded_tokens += len(ids) - best_len
        if self.max_bytes > 0:
            self._entries[key] = cache
            self._evict()
        stats = CacheStats(reused_tokens=best_len, encoded_tokens=len(ids) - best_len)
        return cache, stats, pending

    def append(self, cache: DynamicCache, old_ids: list[int], new_ids: list[int]) -> None:
        """Encode committed canvas tokens after a prompt (multi-canvas fills); the entry stays keyed by
        the prompt, and `crop_to` takes the canvases off again afterwards."""
        self._run_encoder(cache, old_ids + new_ids, len(old_ids))

    def _evict(self) -> None:
        while len(self._entries) > 1 and self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)

    @torch.no_grad()
    def _run_encoder(self, cache: DynamicCache, ids: list[int], start: int) -> None:
        if self.lean_encoder is not None:
            self.lean_encoder.append(cache, ids[start:], start)
            return
        model = self.model
        device = model.device
        new = torch.tensor([ids[start:]], dtype=torch.long, device=device)  # [1, n]
        positions = torch.arange(start, len(ids), dtype=torch.int32, device=device).unsqueeze(0)
        attention_mask = torch.ones((1, len(ids)), dtype=torch.bool, device=device)
        mask_mapping = encoder_masks(
            model,
            cache,
            new_tokens=new.shape[1],
            attention_mask=attention_mask,
            position_ids=positions,
        )
        model.model.encoder(
            input_ids=new, attention_mask=mask_mapping, position_ids=positions, **with_cache(cache)
        )
