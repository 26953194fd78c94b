"""Prompt-cache hit rate for a long-context layout (`chat`, prompts several sliding windows long).

Boundary: measures only — the engine's prompt cache on a keystroke sequence, against full re-encodes; it
is called by `bench/run.py` (`make bench`) and can run alone: `python bench/long_context_cache.py`.

The model is a randomly initialised DiffusionGemma in the real -it format (tests/chat_checkpoint.py) with
the real model's sliding window (1,024) and canvas (256), small enough for a CPU: hit rates depend on the
layout and the window, not on the weights; the milliseconds are this small model's.
"""

from __future__ import annotations

import json
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOW = 1024  # DiffusionGemma's sliding window
TYPED = "resu"  # typed at the cursor, one keystroke at a time
SOURCE = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"


def run(seed: int = 0) -> dict:
    import torch
    from diffgem_model.engine import Engine, GenerateParams
    from diffgem_model.prompt_cache import PromptCache

    from tests.chat_checkpoint import make_chat_checkpoint
    from tests.conftest import stdlib_texts

    torch.manual_seed(seed)
    text = SOURCE.read_text()
    cursor = text.index("\n", len(text) // 2) + 1  # start of a line in the middle of the file
    with tempfile.TemporaryDirectory() as tmp:
        path = make_chat_checkpoint(
            Path(tmp) / "chat",
            stdlib_texts(),
            seed=seed,
            vocab_size=2048,
            hidden_size=128,
            num_layers=4,
            num_heads=2,
            head_dim=64,
            canvas_length=256,
            sliding_window=WINDOW,
        )
        engine = Engine.load(path, device="cpu")
        cache = engine.prompt_cache
        fresh_ms, cached_ms, reused, prompt_lens = [], [], [], []
        for i in range(len(TYPED) + 1):
            params = GenerateParams(prefix=text[:cursor] + TYPED[:i], suffix=text[cursor:])
            ids = engine.build_prompt(params).ids
            prompt_lens.append(len(ids))
            t0 = time.perf_counter()
            _, stats = cache.encode(ids)
            cached_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            PromptCache(engine.model, 0).encode(ids)
            fresh_ms.append((time.perf_counter() - t0) * 1000)
            reused.append(stats.reused_tokens)
    warm = slice(1, None)  # the first prompt has nothing to reuse
    keystrokes = len(reused) - 1
    return {
        "layout": "chat",
        "sliding_window": WINDOW,
        "prompt_tokens": max(prompt_lens),
        "keystrokes": keystrokes,
        "token_hit_rate": sum(reused[warm]) / sum(prompt_lens[warm]),
        "reused_tokens_min": min(reused[warm]),
        "encode_ms_cached_mean": sum(cached_ms[warm]) / keystrokes,
        "encode_ms_full_mean": sum(fresh_ms[warm]) / keystrokes,
        "cache_budget_mb": engine.cache_budget.bytes / 2**20,
        "kv_bytes_per_token": engine.cache_budget.bytes_per_token,
    }


def markdown(r: dict) -> str:
    return (
        f"- Long-context prompt cache (`{r['layout']}` layout, prompt {r['prompt_tokens']} tokens, sliding "
        f"window {r['sliding_window']}, {r['keystrokes']} keystrokes at a cursor mid-file): token hit rate "
        f"{r['token_hit_rate']:.0%} (≥ {r['reused_tokens_min']} tokens reused per keystroke); encode "
        f"{r['encode_ms_cached_mean']:.0f} ms cached vs {r['encode_ms_full_mean']:.0f} ms full "
        f"(a small random model; `bench/long_context_cache.py`)\n"
    )


if __name__ == "__main__":
    result = run()
    print(json.dumps(result, indent=2))
    print(markdown(result))
