"""Own sampler == transformers' generate() on the shipped trained checkpoint (model/embedded).

A random tiny model never commits several tokens in one step nor stops early, so those paths of the
sampler are only exercised here; each test first asserts that they ran.
"""

from __future__ import annotations

import pytest
import torch
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.prompt_cache import PromptCache
from diffgem_model.sampler import SamplerSettings, denoise

PREFIX = "import argparse\n\n\ndef main():\n    parser = argparse.ArgumentParser()\n    "
SUFFIX = "\n    args = parser.parse_args()\n"


@pytest.fixture(scope="module")
def embedded() -> Engine:
    return Engine.load(device="cpu", prompt_cache_mb=0)


@pytest.mark.tf_equivalence
@pytest.mark.parametrize("steps", [8, 16])
def test_sampler_matches_generate_on_trained_checkpoint(embedded, steps):
    seed = 0
    model = embedded.model
    prompt = embedded.build_prompt(GenerateParams(prefix=PREFIX, suffix=SUFFIX))
    torch.manual_seed(seed)
    out = model.generate(
        torch.tensor([prompt.ids]),
        max_new_tokens=model.config.canvas_length,
        max_denoising_steps=steps,
    )
    expected = out.sequences[0, len(prompt.ids) :].tolist()

    cache, _ = PromptCache(model, max_bytes=0).encode(prompt.ids)
    with torch.no_grad():
        ours = denoise(
            model,
            cache,
            canvas_length=model.config.canvas_length,
            # generate() reads the checkpoint's own schedule (t_max/t_min); so must we.
            settings=SamplerSettings(max_steps=steps, **embedded.sampler_defaults()),
            generator=torch.Generator().manual_seed(seed),
        )
    kept, finished = embedded._until_eos(ours.canvas)
    # The paths under test really ran: a real fill, several tokens per forward, the early stop fired.
    assert finished and len(kept) >= 4, embedded.tokenizer.decode(ours.canvas)
    assert float(out.tokens_per_forward[0]) > 1.0
    assert (len(kept) + 1) / ours.forwards > 1.0
    assert ours.forwards < steps, "the stable-and-confident early stop never fired"
    # generate() pads after the first EOS; up to and including it, the canvases are the same.
    assert expected[: len(kept) + 1] == ours.canvas[: len(kept) + 1]
    assert set(expected[len(kept) + 1 :]) <= {model.generation_config.pad_token_id}
