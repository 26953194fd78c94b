"""DiffusionGemma's full-size configuration (26B MoE, 3.8B active), for memory estimates and GPU benchmarks.

Boundary: builds a config object only — no weights; a real checkpoint's own config.json always wins.

The figures not stated in the model card are reconstructed from the published ones and checked against
them (tests/unit/test_precision.py): 25.2B parameters of which the experts are 22.84B (90.5%), hidden 2,816,
30 layers (25 sliding-window + 5 full attention, window 1,024), 128 experts with 8 active, vocabulary
262,144, and ~220 KiB of bf16 KV cache per token. The vision tower is left out (one tiny layer), since
code completion never feeds it images.
"""

from __future__ import annotations

from typing import Any

from transformers import DiffusionGemmaConfig

REAL_TEXT_CONFIG = dict(
    vocab_size=262_144,
    hidden_size=2816,
    intermediate_size=2112,
    moe_intermediate_size=704,
    num_hidden_layers=30,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=256,
    global_head_dim=512,
    num_global_key_value_heads=2,
    num_experts=128,
    top_k_experts=8,
    sliding_window=1024,
    # Gemma 4's 5:1 pattern: every sixth layer attends globally, the last one included.
    layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(30)],
    max_position_embeddings=131_072,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)

# vision_config=None silently builds a ~167M-parameter tower; code completion never feeds it images,
# so every config this project builds gets one tiny layer instead.
TINY_VISION_CONFIG = dict(
    model_type="gemma4_vision",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=1,
    num_key_value_heads=1,
    head_dim=16,
)


def real_config(**text_overrides) -> DiffusionGemmaConfig:
    """The full-size config; `text_overrides` shrink it (e.g. for a CPU smoke run of a GPU script)."""
    text = {**REAL_TEXT_CONFIG, **text_overrides}
    n = text["num_hidden_layers"]
    if "layer_types" not in text_overrides and n != 30:
        text["layer_types"] = [
            "full_attention" if (i + 1) % 6 == 0 or i == n - 1 else "sliding_attention"
            for i in range(n)
        ]
    vocab = text["vocab_size"]
    special: dict[str, Any] = dict(pad_token_id=0, eos_token_id=1, bos_token_id=2)
    return DiffusionGemmaConfig(
        text_config=text,
        vision_config=dict(TINY_VISION_CONFIG),  # a copy: the config may keep and change it
        canvas_length=256,
        image_token_id=vocab - 1,
        boi_token_id=vocab - 2,
        eoi_token_id=vocab - 3,
        **special,
    )
