"""Prompt cache past the sliding window: a tiny config with window 16 against a full re-encode, token for token.

transformers' sliding layers keep only their last `window - 1` keys, so a plain cache cannot be cropped once
a prompt is longer than the window; `RollbackCache` keeps what rollback needs. Every prompt here is several
windows long, and every test first asserts that it is.
"""

from __future__ import annotations

import pytest
import torch
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.memory import kv_bytes_per_token, prompt_cache_budget
from diffgem_model.prompt_cache import PromptCache, RollbackCache
from diffgem_model.sampler import SamplerSettings

from tests.conftest import stdlib_texts
from tests.tiny_model import make_random_checkpoint

WINDOW = 16
PREFIX = (
    "import os\n\n\ndef join_all(parts):\n    result = []\n    for part in parts:\n"
    "        if part:\n            result.append(part.strip())\n        result.append("
)
SUFFIX = ")\n    return os.sep.join(result)\n\n\nprint(join_all(['a', 'b', 'c']))\n"


@pytest.fixture(scope="module")
def windowed(tmp_path_factory):
    path = make_random_checkpoint(
        tmp_path_factory.mktemp("window") / "ckpt", stdlib_texts(), seed=1, sliding_window=WINDOW
    )
    cached = Engine.load(path, device="cpu", prompt_cache_mb=64)
    uncached = Engine.load(path, device="cpu", prompt_cache_mb=0)
    assert cached.model.config.get_text_config().sliding_window == WINDOW
    return cached, uncached


def _same_kv(a: RollbackCache, b: RollbackCache) -> None:
    assert a.get_seq_length() == b.get_seq_length()
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.keys.shape == lb.keys.shape  # a sliding layer holds exactly its window
        assert torch.allclose(la.keys, lb.keys, atol=1e-5)
        assert torch.allclose(la.values, lb.values, atol=1e-5)


def test_rollback_past_the_window_equals_a_full_encode(windowed):
    cached, _ = windowed
    model, tok = cached.model, cached.tokenizer
    layout = cached.build_prompt
    base = layout(GenerateParams(prefix=PREFIX, suffix=SUFFIX)).ids
    assert len(base) > 4 * WINDOW
    pc = PromptCache(model, 64 << 20)
    pc.encode(base)
    rolled_back = []
    # Typing at the cursor, then an edit far back (in the suffix, which comes first in `fim`).
    for prefix, suffix in [
        (PREFIX + "p", SUFFIX),
        (PREFIX + "pa", SUFFIX.replace("'c'", "'z'")),
    ]:
        ids = layout(GenerateParams(prefix=prefix, suffix=suffix)).ids
        cache, stats = pc.encode(ids)
        assert stats.reused_tokens > WINDOW and stats.encoded_tokens > 0
        rolled_back.append(stats.encoded_tokens)
        fresh, _ = PromptCache(model, 0).encode(ids)
        _same_kv(cache, fresh)
    assert max(rolled_back) > WINDOW  # the suffix edit rolled back further than one window
    # Back to the first prompt: the sliding layers hold the older keys again.
    assert pc.encode(base)[1].reused_tokens > WINDOW
    assert tok is not None


def test_cached_engine_equals_full_re_encode_token_for_token(windowed):
    cached, uncached = windowed
    sampler = SamplerSettings(max_steps=4)
    reused = []
    for typed in ["", "p", "pa", "par", "part", "part."]:
        params = GenerateParams(prefix=PREFIX + typed, suffix=SUFFIX, sampler=sampler, seed=3)
        a, b = cached.generate(params), uncached.generate(params)
        assert a.token_ids == b.token_ids, typed
        assert b.reused_tokens == 0
        reused.append(a.reused_tokens)
    assert min(reused[1:]) > 4 * WINDOW  # every keystroke reused well past the window
    assert cached.prompt_cache.hits == 5


def test_multi_canvas_fill_keeps_the_cache(windowed):
    cached, uncached = windowed
    cached.prompt_cache.clear()
    canvas = cached.canvas_length
    sampler = SamplerSettings(max_steps=2, stop_entropy=0.0)
    params = GenerateParams(prefix=PREFIX, suffix=SUFFIX, sampler=sampler, max_tokens=3 * canvas)
    first = cached.generate(params)
    assert first.canvases > 1  # the fill did append committed canvases to the cache
    assert len(cached.prompt_cache._entries) == 1
    (entry,) = cached.prompt_cache._entries.values()
    assert entry.get_seq_length() == len(cached.build_prompt(params).ids)  # canvases rolled back
    nxt = GenerateParams(prefix=PREFIX + "x", suffix=SUFFIX, sampler=sampler, max_tokens=3 * canvas)
    a, b = cached.generate(nxt), uncached.generate(nxt)
    assert a.reused_tokens > 4 * WINDOW
    assert a.token_ids == b.token_ids


def test_cache_size_comes_from_bytes_per_token(windowed):
    cached, _ = windowed
    model = cached.model
    ids = cached.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX)).ids
    cache, _ = PromptCache(model, 0).encode(ids)
    # Every layer keeps every token (rollback), and the arithmetic says so.
    assert cache.nbytes == len(ids) * kv_bytes_per_token(model.config, model.dtype)
    auto = prompt_cache_budget(model)
    assert auto.source == "free memory" and auto.bytes > 0
    assert cached.cache_budget.bytes == 64 << 20 and cached.cache_budget.source == "setting"
    assert prompt_cache_budget(model, 0).bytes == 0
