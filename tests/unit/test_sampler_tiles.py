"""The sampler's per-step statistics computed tile by tile equal the one-shot computation exactly."""

from __future__ import annotations

import pytest
import torch
from diffgem_model.sampler import _confidence_rule_stats, _entropy_rule_stats, _tiles


def _logits() -> torch.Tensor:
    torch.manual_seed(0)
    logits = torch.randn(1, 40, 300) * 3
    logits[0, 5, :] = float("-inf")  # a pinned position: one-hot logits
    logits[0, 5, 7] = 0.0
    return logits


@pytest.mark.parametrize("rows", [1, 7, 16])
def test_entropy_rule_tiles_change_no_value_nor_the_generator(rows):
    logits = _logits()
    assert len(_tiles(logits, rows)) > 1
    g_one, g_tiled = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    one = _entropy_rule_stats(logits, g_one, rows=40)
    tiled = _entropy_rule_stats(logits, g_tiled, rows=rows)
    for a, b in zip(one, tiled, strict=True):
        assert a.shape == (1, 40) and torch.equal(a, b)
    assert int(one[2][0, 5]) == 7  # the pinned position sampled its token
    # The generator advanced exactly as far: the next draw (the re-noising) is the same.
    assert torch.equal(
        torch.randint(0, 300, (8,), generator=g_one), torch.randint(0, 300, (8,), generator=g_tiled)
    )


@pytest.mark.parametrize("rows", [3, 16])
def test_confidence_rule_tiles_change_no_value(rows):
    logits = _logits()
    one = _confidence_rule_stats(logits, None, rows=40)
    tiled = _confidence_rule_stats(logits, None, rows=rows)
    for a, b in zip(one, tiled, strict=True):
        assert a.shape == (1, 40) and torch.allclose(a.float(), b.float())
    assert float(one[0][0, 5]) == 1.0  # a pinned position is certain
