"""Tiny random DiffusionGemma checkpoints for tests: a small tokenizer and config, made in seconds.

Test-only (moved out of `diffgem_model.checkpoint`); they reuse the real checkpoint builders, so a tiny
checkpoint loads through the same `load_checkpoint` path as the shipped one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffgem_model.checkpoint import diffusion_gemma_config, train_bpe_tokenizer
from transformers import (
    DiffusionGemmaConfig,
    DiffusionGemmaForBlockDiffusion,
    PreTrainedTokenizerFast,
)


def train_tiny_tokenizer(texts: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A small tokenizer for tests, trained in well under a second."""
    return train_bpe_tokenizer(texts, vocab_size)


def tiny_config(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    head_dim: int = 32,
    canvas_length: int = 16,
    sliding_window: int = 1024,
) -> DiffusionGemmaConfig:
    """A DiffusionGemma config small enough for CPU tests."""
    text_config = dict(
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=1,
        head_dim=head_dim,
        # Without these two the full-attention layers get Gemma 4's head dim of 512.
        global_head_dim=head_dim,
        num_global_key_value_heads=1,
        num_experts=1,
        top_k_experts=1,
        moe_intermediate_size=hidden_size,
        sliding_window=sliding_window,
        layer_types=["sliding_attention"] * (num_layers - 1) + ["full_attention"],
        max_position_embeddings=4096,
    )
    return diffusion_gemma_config(tokenizer, text_config, canvas_length)


def make_random_checkpoint(
    path: str | Path, texts: list[str], *, seed: int = 0, vocab_size: int = 512, **config_kwargs
) -> Path:
    """Write a randomly initialised tiny checkpoint (tokenizer + weights) that loads with from_pretrained."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tiny_tokenizer(texts, vocab_size=vocab_size)
    torch.manual_seed(seed)
    model = DiffusionGemmaForBlockDiffusion(tiny_config(tokenizer, **config_kwargs))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
