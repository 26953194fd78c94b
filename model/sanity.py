"""Load-time sanity check: a checkpoint's weights are finite and one forward gives finite logits.

Runs in the worker right after loading, before it reports ready (torch side only). A checkpoint with
NaN or Inf weights loads without any error and would then fail, or fill garbage, on every request.
"""

from __future__ import annotations

import torch

from .checkpoint import CheckpointError


def check_model(model: torch.nn.Module, tokenizer) -> None:
    """Raise CheckpointError naming the first non-finite tensor, or the forward that went non-finite."""
    for name, tensor in model.named_parameters():
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"weights contain NaN or Inf values (first in {name})")
    # One short forward: catches what finite weights can still produce (e.g. an overflowing norm).
    ids = tokenizer("def f(x):\n    return x\n", add_special_tokens=False)["input_ids"][:16] or [0]
    with torch.no_grad():
        device = next(model.parameters()).device
        logits = model(input_ids=torch.tensor([ids], device=device)).logits  # [1, C, V]
    if not bool(torch.isfinite(logits).all()):
        raise CheckpointError("the model's first forward gave NaN or Inf logits")
