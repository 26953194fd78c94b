"""The lean CPU decoder step equals HF's decoder forward: logits on tiny random checkpoints, and
token-identical fills on real holes with the embedded checkpoint."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffgem_model.checkpoint import load_checkpoint
from diffgem_model.compat import with_cache
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.fast_decoder import (
    MATMUL_SWITCH,
    ROW_BUCKET,
    LeanDecoder,
    cpu_has_native_bf16,
    lean_unsupported,
    matmul_precision,
    step_flops,
)
from diffgem_model.fast_encoder import LeanEncoder
from diffgem_model.prompt_cache import PromptCache
from diffgem_model.sampler import SamplerSettings, _decoder_inputs

from tests.conftest import stdlib_texts
from tests.tiny_model import make_random_checkpoint

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _hf_logits(model, cache, canvas, self_conditioning=None) -> torch.Tensor:
    mask_mapping, positions = _decoder_inputs(model, cache, canvas)
    with torch.no_grad():
        return model(
            decoder_input_ids=canvas,
            self_conditioning_logits=self_conditioning,
            decoder_attention_mask=mask_mapping,
            decoder_position_ids=positions,
            **with_cache(cache),
        ).logits


@pytest.fixture(scope="module")
def short_window_checkpoint(tmp_path_factory) -> Path:
    """Sliding window shorter than the prompt: the sliding layers' caches hold only its last keys."""
    return make_random_checkpoint(
        tmp_path_factory.mktemp("lean") / "ckpt",
        stdlib_texts(20),
        seed=1,
        num_layers=3,
        sliding_window=24,
    )


@pytest.mark.tf_equivalence
@pytest.mark.parametrize("which", ["tiny", "short_window"])
def test_lean_step_logits_equal_hf_forward(which, tiny_checkpoint, short_window_checkpoint):
    path = tiny_checkpoint if which == "tiny" else short_window_checkpoint
    model = load_checkpoint(path, "cpu").model
    assert lean_unsupported(model) is None
    tokenizer = load_checkpoint(path, "cpu").tokenizer
    ids = tokenizer(STDLIB.joinpath("textwrap.py").read_text()[:1500]).input_ids[:200]
    cache, _ = PromptCache(model, max_bytes=0).encode(ids)
    if which == "short_window":
        assert cache.layers[0].keys.shape[-2] < cache.get_seq_length()  # the window is exercised
    canvas_length = model.config.canvas_length
    step = LeanDecoder(model, matmul="fp32").bind(cache, canvas_length)
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.text_config.vocab_size
    self_conditioning = None
    for _ in range(3):  # the buffers are reused across steps: later steps must still match
        canvas = torch.randint(0, vocab, (1, canvas_length), generator=generator)
        expected = _hf_logits(model, cache, canvas, self_conditioning)
        got = step(canvas, self_conditioning)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        self_conditioning = expected / 0.7
    # The step only reads the cache.
    assert cache.get_seq_length() == len(ids)


@pytest.mark.tf_equivalence
@pytest.mark.parametrize("which", ["tiny", "short_window"])
def test_lean_encoder_writes_the_cache_hf_writes(which, tiny_checkpoint, short_window_checkpoint):
    """From scratch (many tokens, causal + sliding masks), one typed token, and a rollback + a few."""
    path = tiny_checkpoint if which == "tiny" else short_window_checkpoint
    checkpoint = load_checkpoint(path, "cpu")
    model = checkpoint.model
    ids = checkpoint.tokenizer(STDLIB.joinpath("shlex.py").read_text()[:2000]).input_ids[:160]
    hf, lean = PromptCache(model, 64 << 20), PromptCache(model, 64 << 20)
    lean.lean_encoder = LeanEncoder(LeanDecoder(model, matmul="fp32"))
    for prompt in (ids[:120], ids[:121], ids[:100] + ids[130:137], ids[:100] + ids[130:160]):
        expected, stats = hf.encode(prompt)
        got, lean_stats = lean.encode(prompt)
        assert stats == lean_stats
        for a, b in zip(expected.layers, got.layers, strict=True):
            torch.testing.assert_close(b.keys, a.keys, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(b.values, a.values, rtol=1e-5, atol=1e-5)
    if which == "short_window":
        assert got.layers[0].keys.shape[-2] < got.get_seq_length()  # the window is exercised
    assert stats.reused_tokens > 0  # the incremental path ran


def test_unsupported_models_keep_hf_forward(tiny_checkpoint, monkeypatch):
    model = load_checkpoint(tiny_checkpoint, "cpu").model
    monkeypatch.setenv("DIFFGEM_LEAN_DECODER", "0")
    assert lean_unsupported(model) == "DIFFGEM_LEAN_DECODER=0"
    assert Engine(load_checkpoint(tiny_checkpoint, "cpu")).lean is None
    monkeypatch.delenv("DIFFGEM_LEAN_DECODER")
    model.config.text_config.num_experts = 4
    assert "experts" in lean_unsupported(model)


def test_step_flops_counts_the_decoder(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint, "cpu").model
    params = sum(
        p.numel() for name, p in model.model.decoder.layers.named_parameters() if p.dim() >= 2
    )
    # Every 2-D decoder weight is used once per canvas token, besides attention and the head.
    flops = step_flops(model, prompt_len=0, canvas_length=1, self_conditioning=False)
    head = 2 * model.config.text_config.hidden_size * model.config.text_config.vocab_size
    router = 2 * sum(layer.router.proj.weight.numel() for layer in model.model.decoder.layers)
    assert (
        flops
        - head
        - 2
        * sum(  # attention over the canvas token itself
            2 * layer.self_attn.q_proj.out_features for layer in model.model.decoder.layers
        )
        == 2 * params - router
    )


def _real_holes(n: int) -> list[tuple[str, str, str]]:
    """Rest-of-line holes at evenly spread content lines of real standard-library files."""
    holes = []
    for name in ("textwrap.py", "shlex.py", "colorsys.py", "bisect.py"):
        text = STDLIB.joinpath(name).read_text()
        lines = text.split("\n")
        content = [i for i, line in enumerate(lines) if len(line.strip()) > 16 and i > 20]
        for row in content[:: max(1, len(content) // (n // 4))][: n // 4]:
            start = sum(len(line) + 1 for line in lines[:row])
            line = lines[row]
            cut = start + len(line) - len(line.lstrip()) + (len(line.strip()) * 2) // 5
            end = start + len(line)
            holes.append((text[:cut], text[cut:end], text[end:]))  # prefix, middle, suffix
    return holes


@pytest.mark.slow
def test_lean_engine_fills_real_holes_token_for_token(monkeypatch):
    monkeypatch.setenv(MATMUL_SWITCH, "fp32")  # HF's forward is float32: the same arithmetic
    engine = Engine.load(device="cpu", prompt_cache_mb=64)
    assert engine.lean is not None, engine.lean_unsupported
    lean = engine.lean
    calls = {"n": 0}
    bind = lean.bind

    def counting_bind(cache, canvas_length):
        step = bind(cache, canvas_length)

        def counted(*args):
            calls["n"] += 1
            return step(*args)

        return counted

    lean.bind = counting_bind  # type: ignore[method-assign]
    sampler = SamplerSettings(rule="confidence", max_steps=8, **engine.sampler_defaults())
    holes = _real_holes(8)
    filled = 0
    reference_engine = Engine.load(device="cpu", prompt_cache_mb=64)
    reference_engine.lean, reference_engine.prompt_cache.lean_encoder = None, None
    for prefix, middle, suffix in holes:
        # The hole, then its first character typed (the prompt cache re-encodes a few tokens).
        for typed in ("", middle[:1]):
            params = GenerateParams(prefix=prefix + typed, suffix=suffix, sampler=sampler)
            fast = engine.generate(params)
            reference = reference_engine.generate(params)
            assert fast.token_ids == reference.token_ids, (prefix[-60:], fast.text, reference.text)
            assert fast.forwards == reference.forwards
            filled += bool(fast.text.strip())
    assert calls["n"] >= 2 * len(holes)  # the lean step really ran
    assert engine.prompt_cache.lean_encoder is not None and engine.prompt_cache.hits > 0
    assert filled >= len(holes), filled  # and the holes are real fills, not empty canvases


def test_matmul_precision_follows_the_cpu_unless_asked(monkeypatch):
    import diffgem_model.fast_decoder as fast_decoder

    monkeypatch.setenv(MATMUL_SWITCH, "auto")
    monkeypatch.setattr(fast_decoder, "cpu_has_native_bf16", lambda: True)
    assert matmul_precision() == "bf16"
    monkeypatch.setattr(fast_decoder, "cpu_has_native_bf16", lambda: False)
    assert matmul_precision() == "fp32"  # emulated bf16 is slower than fp32
    for chosen in ("fp32", "bf16", "int8"):
        monkeypatch.setenv(MATMUL_SWITCH, chosen)
        assert matmul_precision() == chosen
    monkeypatch.setenv(MATMUL_SWITCH, "fp16")  # not a choice: the CPU's own default
    assert matmul_precision() == "fp32"


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_step_and_encode_stay_close_to_fp32(precision, tiny_checkpoint):
    """Every matmul runs in the chosen form (the packed weights are what the step multiplies by), and
    the logits and the cache it writes stay close to fp32's (bf16 keeps 8 mantissa bits; int8 rounds
    activations to 1/127 of their row's range): the same top token almost everywhere."""
    tolerance = {"bf16": 0.02, "int8": 0.25}[precision]
    checkpoint = load_checkpoint(tiny_checkpoint, "cpu")
    model = checkpoint.model
    ids = checkpoint.tokenizer(STDLIB.joinpath("textwrap.py").read_text()[:1500]).input_ids[:150]
    exact, reduced = LeanDecoder(model, matmul="fp32"), LeanDecoder(model, matmul=precision)
    assert reduced.matmul == precision
    assert {id(w) for w in reduced.matmul_weights()} <= set(reduced._packed)
    packed_calls = {"n": 0}
    mm_packed = reduced._mm_packed

    def counting(x, packed):
        packed_calls["n"] += 1
        return mm_packed(x, packed)

    reduced._mm_packed = counting  # type: ignore[method-assign]
    caches = []
    for dec in (exact, reduced):
        cache = PromptCache(model, max_bytes=0)
        cache.lean_encoder = LeanEncoder(dec)
        caches.append(cache.encode(ids)[0])
    for a, b in zip(caches[0].layers, caches[1].layers, strict=True):
        assert (b.keys - a.keys).norm() < tolerance * a.keys.norm()
    encode_calls = packed_calls["n"]
    assert encode_calls > 0  # the encoder multiplied in the reduced precision too
    canvas_length = model.config.canvas_length
    vocab = model.config.text_config.vocab_size
    canvas = torch.randint(0, vocab, (1, canvas_length), generator=torch.Generator().manual_seed(0))
    expected = exact.bind(caches[0], canvas_length)(canvas)
    got = reduced.bind(caches[1], canvas_length)(canvas, expected / 0.7)
    expected = exact.bind(caches[0], canvas_length)(canvas, expected / 0.7)
    assert packed_calls["n"] > encode_calls  # the step did too, self-conditioning included
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert (got - expected).norm() < tolerance * expected.norm()
    agree = (got.argmax(-1) == expected.argmax(-1)).float().mean().item()
    assert agree >= 0.9, agree


def test_packed_bf16_weights_multiply_as_plain_bf16(tiny_checkpoint):
    """oneDNN-packed bf16 weights (where this torch build packs them) give F.linear's bf16 result bit
    for bit, and the step skips the denormal flush only where the packed kernels run."""
    model = load_checkpoint(tiny_checkpoint, "cpu").model
    dec = LeanDecoder(model, matmul="bf16")
    packed = [dec._packed[id(w)] for w in dec.matmul_weights()]
    generator = torch.Generator().manual_seed(0)
    # A step's rows, and an encode's (padded to a multiple of ROW_BUCKET rows, then sliced back).
    for rows in (5, 100, ROW_BUCKET * 2):
        x = torch.randn(1, rows, dec.embed.shape[1], generator=generator)
        for weight, form in zip(dec.matmul_weights(), packed, strict=True):
            assert isinstance(form, torch.Tensor) and form.dtype == torch.bfloat16
            if weight.shape[1] != x.shape[-1]:
                continue  # the down projections take the MLP's width
            expected = F.linear(x.to(torch.bfloat16), weight.to(torch.bfloat16)).float()
            assert torch.equal(dec.mm(x, weight), expected)
    dec.warm_row_buckets(2 * ROW_BUCKET)  # builds the padded shapes; multiplies nothing it keeps
    if cpu_has_native_bf16():  # where bf16 is the default, the packed kernels are what runs
        assert all(form.is_mkldnn for form in packed)
    assert dec.soft_embed_reads_denormals_as_zero == all(form.is_mkldnn for form in packed)
    assert not LeanDecoder(model, matmul="fp32").soft_embed_reads_denormals_as_zero


@pytest.mark.slow
def test_bf16_engine_fills_real_holes_close_to_fp32(monkeypatch):
    """The embedded model with bf16 matmuls (the default on AMX/AVX512-BF16 CPUs) fills real holes, and
    mostly with fp32's tokens; its exact match against fp32's is measured in bench/precision_eval.md."""
    engines = {}
    for precision in ("fp32", "bf16"):
        monkeypatch.setenv(MATMUL_SWITCH, precision)
        engines[precision] = Engine.load(device="cpu", prompt_cache_mb=64)
    assert engines["bf16"].lean is not None and engines["bf16"].lean.matmul == "bf16"
    assert "bf16 matmuls" in engines["bf16"].description
    sampler = SamplerSettings(rule="confidence", max_steps=8, **engines["fp32"].sampler_defaults())
    holes = _real_holes(8)
    same = filled = 0
    for prefix, _middle, suffix in holes:
        params = GenerateParams(prefix=prefix, suffix=suffix, sampler=sampler)
        reference, got = (engines[p].generate(params) for p in ("fp32", "bf16"))
        same += got.token_ids == reference.token_ids
        filled += bool(got.text.strip())
    assert filled >= len(holes) // 2, filled  # real fills, not empty canvases
    assert same >= len(holes) // 2, same


def test_step_entropy_equals_torch_distributions():
    """The sampler's fused entropy is Categorical's, pinned (-inf) positions included."""
    from diffgem_model.sampler import _entropy

    logits = torch.randn(1, 7, 301, generator=torch.Generator().manual_seed(0)) * 20
    logits[0, 3] = float("-inf")
    logits[0, 3, 5] = 0.0
    probs = torch.softmax(logits, dim=-1)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(_entropy(logits, probs), expected, rtol=1e-5, atol=1e-5)


def test_default_threads_leave_a_core(monkeypatch):
    from diffgem_model.fast_decoder import default_threads

    monkeypatch.setenv("DIFFGEM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("DIFFGEM_THREADS")
    usable = len(os.sched_getaffinity(0))
    assert default_threads() == min(4, max(1, usable - 1))


def test_the_package_makes_openmp_threads_sleep_before_torch_loads():
    """Threads past the first sleep at barriers instead of spinning: the worker's import order."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import diffgem_model, sys, os; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["PASSIVE", "False"], out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own choice stands
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["ACTIVE", "False"], out.stderr
