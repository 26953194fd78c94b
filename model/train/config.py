"""Model config of the embedded checkpoint: a DiffusionGemma sized for a 2-core CPU.

Named presets (nanoGPT style); `build_config` fills in the fields a tiny DiffusionGemma needs (see
`checkpoint.diffusion_gemma_config`, after transformers' models/diffusion_gemma/configuration_diffusion_gemma.py).
No training logic here.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import DiffusionGemmaConfig, PreTrainedTokenizerBase

from ..checkpoint import diffusion_gemma_config


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    num_layers: int
    num_heads: int
    head_dim: int
    num_kv_heads: int
    intermediate_size: int
    # Every DiffusionGemma layer also runs a routed expert MLP beside the dense one; one small expert
    # keeps the architecture intact at little cost.
    moe_intermediate_size: int
    canvas_length: int = 32
    sliding_window: int = 512


PRESETS = {
    "smoke": ModelShape(64, 2, 2, 32, 1, 128, 32),
    "embedded": ModelShape(384, 6, 6, 64, 2, 1024, 64),
    "embedded-small": ModelShape(256, 6, 4, 64, 2, 1024, 64),
}


def build_config(tokenizer: PreTrainedTokenizerBase, shape: ModelShape) -> DiffusionGemmaConfig:
    vocab_size = len(tokenizer)
    text_config = dict(
        vocab_size=vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim,
        # Without these two the full-attention layers get Gemma 4's head dim of 512.
        global_head_dim=shape.head_dim,
        num_global_key_value_heads=shape.num_kv_heads,
        num_experts=1,
        top_k_experts=1,
        moe_intermediate_size=shape.moe_intermediate_size,
        sliding_window=shape.sliding_window,
        # The last layer must be full attention; alternate like Gemma (sliding, ..., full).
        layer_types=[
            "full_attention"
            if (i + 1) % 3 == 0 or i == shape.num_layers - 1
            else "sliding_attention"
            for i in range(shape.num_layers)
        ],
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return diffusion_gemma_config(tokenizer, text_config, shape.canvas_length)
