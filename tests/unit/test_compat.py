"""transformers compatibility: the installed release is the one CI meant, and compat speaks its names."""

from __future__ import annotations

import os

import pytest
import torch
import transformers
from diffgem_model.compat import CACHE_KWARG, output_cache, with_cache
from diffgem_model.prompt_cache import PromptCache
from packaging.version import Version


@pytest.mark.tf_equivalence
def test_installed_transformers_is_the_one_under_test():
    """`make test-tf-oldest` sets the version it built; a venv that fell back to another one fails here."""
    expected = os.environ.get("DIFFGEM_EXPECT_TRANSFORMERS")
    if expected is not None:
        assert transformers.__version__ == expected
    assert Version(transformers.__version__) >= Version("5.17")


@pytest.mark.tf_equivalence
def test_cache_keyword_matches_the_release():
    # 5.24 renamed `past_key_values` -> `cache` (huggingface/transformers, diffusion_gemma).
    renamed = Version(transformers.__version__) >= Version("5.24")
    assert CACHE_KWARG == ("cache" if renamed else "past_key_values")


@pytest.mark.tf_equivalence
def test_encoder_output_cache_is_read_under_either_name(tiny_checkpoint):
    from diffgem_model.checkpoint import load_checkpoint

    model = load_checkpoint(tiny_checkpoint).model
    ids = list(range(10, 40))
    cache, _ = PromptCache(model, 0).encode(ids)
    out = model.model.encoder(input_ids=torch.tensor([ids]), use_cache=True, **with_cache(None))
    returned = output_cache(out)
    assert returned is not None and returned.get_seq_length() == len(ids)
    assert torch.allclose(returned.layers[0].keys, cache.layers[0].keys, atol=1e-5)
