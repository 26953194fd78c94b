"""The folded first step (model/fold.py) equals encoding the new prompt tokens and then stepping:
same logits for that step and the later ones, same cache; and the engine's fills are token-identical."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch
from diffgem_model.checkpoint import load_checkpoint
from diffgem_model.fast_decoder import LeanDecoder
from diffgem_model.fast_encoder import LeanEncoder
from diffgem_model.fold import FoldedStep, foldable
from diffgem_model.prompt_cache import PromptCache

from tests.conftest import stdlib_texts
from tests.tiny_model import make_random_checkpoint

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def short_window_checkpoint(tmp_path_factory) -> Path:
    """Sliding window shorter than the prompt: the new tokens' keys push old ones out of it."""
    return make_random_checkpoint(
        tmp_path_factory.mktemp("fold") / "ckpt",
        stdlib_texts(20),
        seed=1,
        num_layers=3,
        sliding_window=24,
    )


def _cache(model, lean, ids):
    cache = PromptCache(model, max_bytes=0)
    cache.lean_encoder = LeanEncoder(lean)
    return cache.encode(ids)[0]


@pytest.mark.parametrize("which", ["tiny", "short_window"])
@pytest.mark.parametrize("new", [1, 3, 16])
def test_folded_step_equals_encode_then_step(which, new, tiny_checkpoint, short_window_checkpoint):
    path = tiny_checkpoint if which == "tiny" else short_window_checkpoint
    checkpoint = load_checkpoint(path, "cpu")
    model = checkpoint.model
    ids = checkpoint.tokenizer(STDLIB.joinpath("shlex.py").read_text()[:2000]).input_ids[:120]
    lean = LeanDecoder(model)
    encoder = LeanEncoder(lean)
    assert foldable(lean, encoder)
    held = len(ids) - new
    reference = _cache(model, lean, ids)  # every token encoded first
    folded = _cache(model, lean, ids[:held])  # the new tokens left to the first step
    if which == "short_window":
        assert reference.layers[0].keys.shape[-2] < reference.get_seq_length()
    canvas_length = model.config.canvas_length
    expected_step = lean.bind(reference, canvas_length)
    step = FoldedStep(lean, encoder, folded, canvas_length, ids[held:], held)
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.text_config.vocab_size
    self_conditioning = None
    for _ in range(3):  # the first call folds; the later ones reuse the buffers it filled
        canvas = torch.randint(0, vocab, (1, canvas_length), generator=generator)
        expected = expected_step(canvas, self_conditioning)
        got = step(canvas, self_conditioning)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        self_conditioning = expected / 0.7
    assert folded.get_seq_length() == len(ids)  # the fold wrote the new tokens into the cache
    for a, b in zip(reference.layers, folded.layers, strict=True):
        torch.testing.assert_close(b.keys, a.keys, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b.values, a.values, rtol=1e-5, atol=1e-5)


def test_engine_folds_a_keystroke_and_fills_as_without(monkeypatch):
    """The embedded checkpoint typing into a real file: fold on and off give the same fills; the
    fold ran (nothing encoded before the first step) and the cache entry then holds the prompt."""
    import diffgem_model.engine as engine_module
    from diffgem_model.engine import Engine, GenerateParams
    from diffgem_model.sampler import SamplerSettings

    engine = Engine.load(device="cpu")
    assert engine.fold
    folds: list[int] = []

    class Counted(FoldedStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            folds.append(len(self.new_ids))

    monkeypatch.setattr(engine_module, "FoldedStep", Counted)
    text = STDLIB.joinpath("textwrap.py").read_text()
    cut = text.index("def dedent(")
    sampler = SamplerSettings(rule="confidence", max_steps=8, confidence_threshold=0.7)
    typed = "def dedent(te"
    for k in range(len("def dedent("), len(typed) + 1):
        params = GenerateParams(prefix=text[:cut] + typed[:k], suffix=text[cut:], sampler=sampler)
        engine.fold = False
        engine.prefill(GenerateParams(prefix=text[:cut] + typed[: k - 1], suffix=text[cut:]))
        plain = engine.generate(params)
        folds.clear()
        engine.fold = True
        engine.prefill(GenerateParams(prefix=text[:cut] + typed[: k - 1], suffix=text[cut:]))
        lookups = engine.prompt_cache.lookups
        folded = engine.generate(params)
        assert folds[-1:] == [folded.encoded_tokens], (folds, folded)  # the fold path ran
        assert (folded.text, folded.forwards) == (plain.text, plain.forwards)
        prompt = engine.build_prompt(params).ids
        again, stats = engine.prompt_cache.encode(prompt)  # settled: keyed by the whole prompt
        assert stats.reused_tokens == len(prompt) - 1 and engine.prompt_cache.lookups == lookups + 2
