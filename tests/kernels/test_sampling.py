"""Fused sampling kernel vs its torch reference, and the reference vs transformers' sampler semantics.
Kernel tests run on CPU under TRITON_INTERPRET=1 (see conftest.py) and skip where Triton is absent.
"""

from __future__ import annotations

import os

import pytest
import torch

try:
    from diffgem_kernels import sampling as S
except ImportError:  # running from a checkout without the editable install
    from kernels import sampling as S

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DTYPES = [torch.float32, torch.bfloat16, torch.float16]
# Both implementations upcast the logits exactly to fp32 and accumulate in fp32, so the stats differ
# only by summation order; half-precision inputs add exact ties, which the argmax checks cover.
TOL = {
    torch.float32: dict(atol=2e-5, rtol=2e-5),
    torch.bfloat16: dict(atol=2e-5, rtol=2e-5),
    torch.float16: dict(atol=2e-5, rtol=2e-5),
}
SHAPES = [(1, 7), (5, 123), (3, 1000), (33, 8193), (2, 70000)]
# The interpreter evaluates the untaken branch of tl.where too (NaN from -inf * 0 there, by design).
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.fixture(scope="module")
def device() -> str:
    pytest.importorskip("triton")
    if INTERPRET:
        return "cpu"
    if not torch.cuda.is_available():
        pytest.skip("TRITON_INTERPRET=0 and no CUDA device")
    return "cuda"


def _logits(shape, dtype, device, scale=3.0, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen) * scale).to(dtype).to(device)  # [C, V]


def assert_stats_match(got: S.SamplingStats, want: S.SamplingStats, dtype: torch.dtype) -> None:
    assert torch.equal(got.sampled.cpu(), want.sampled.cpu()), (got.sampled, want.sampled)
    assert torch.equal(got.argmax.cpu(), want.argmax.cpu()), (got.argmax, want.argmax)
    for name in ("confidence", "entropy", "logsumexp"):
        torch.testing.assert_close(
            getattr(got, name).cpu(), getattr(want, name).cpu(), **TOL[dtype], msg=name
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_kernel_matches_reference(device, shape, dtype):
    logits = _logits(shape, dtype, device)
    got = S.fused_sampling_step(logits, 0.7, None, seed=11, block=4096)
    assert_stats_match(got, S.fused_sampling_step_reference(logits, 0.7, None, seed=11), dtype)


@pytest.mark.parametrize(
    "shape,splits,block",
    [((33, 8193), 2, 4096), ((33, 8193), 3, 1024), ((2, 70000), 3, 8192), ((3, 1000), 7, 64),
     ((5, 123), 4, 16)],
    ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v),
)  # fmt: skip
def test_vocab_split_matches_reference(device, shape, splits, block):
    logits = _logits(shape, torch.bfloat16, device, seed=1)
    got = S.fused_sampling_step(logits, 0.9, None, seed=3, num_splits=splits, block=block)
    want = S.fused_sampling_step_reference(logits, 0.9, None, seed=3)
    assert_stats_match(got, want, torch.bfloat16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_softcap_matches_reference(device, dtype):
    logits = _logits((4, 3001), dtype, device, scale=40.0, seed=2)  # well past the cap
    got = S.fused_sampling_step(logits, 0.5, 30.0, seed=5, num_splits=2, block=1024)
    want = S.fused_sampling_step_reference(logits, 0.5, 30.0, seed=5)
    assert_stats_match(got, want, dtype)
    assert float(want.logsumexp.max()) < 30.0 / 0.5 + 9.0  # capped: lse <= cap / T + log V


def test_argmax_ties_pick_first_index(device):
    # Integer logits over 4 values: every row has many exact ties at its max, across lanes,
    # tiles and splits; torch.argmax (and the engine) take the lowest index.
    gen = torch.Generator().manual_seed(4)
    logits = torch.randint(0, 4, (6, 300), generator=gen).to(torch.bfloat16).to(device)
    first = (logits.float() == logits.float().max(-1, keepdim=True).values).int().argmax(-1)
    for splits, block in [(1, 64), (3, 32), (5, 16)]:
        got = S.fused_sampling_step(logits, 1.0, None, seed=0, num_splits=splits, block=block)
        assert torch.equal(got.argmax.cpu(), first.cpu()), (splits, block, got.argmax, first)


def test_pinned_rows_are_one_hot(device):
    # The engine pins canvas positions with -inf logits except the pinned token (logit 0).
    logits = _logits((3, 513), torch.float32, device, seed=6)
    logits[0] = float("-inf")
    logits[0, 77] = 0.0
    logits[2, :500] = float("-inf")  # mass only in the last 13 columns
    got = S.fused_sampling_step(logits, 0.4, None, seed=9, num_splits=2, block=128)
    assert_stats_match(got, S.fused_sampling_step_reference(logits, 0.4, None, 9), torch.float32)
    assert got.sampled[0] == 77 and got.argmax[0] == 77
    assert float(got.confidence[0]) == 1.0 and float(got.entropy[0]) == 0.0
    assert int(got.sampled[2]) >= 500 and int(got.argmax[2]) >= 500


def test_leading_dims_and_row_stride(device):
    wide = _logits((1, 9, 700), torch.float16, device, seed=7)
    logits = wide[..., :650]  # [1, C, V] with a row stride of 700
    got = S.fused_sampling_step(logits, 0.8, None, seed=1, block=256)
    want = S.fused_sampling_step_reference(logits.contiguous(), 0.8, None, seed=1)
    assert got.sampled.shape == (1, 9) and got.entropy.shape == (1, 9)
    assert_stats_match(got, want, torch.float16)


def test_reference_matches_transformers_sampler_semantics():
    # generation_diffusion_gemma._denoising_step: processed = logits / T; entropy of
    # Categorical(logits=processed); argmax and softmax of processed.
    logits = _logits((7, 301), torch.float32, "cpu", scale=5.0, seed=8)
    temperature = 0.6
    processed = logits / temperature
    stats = S.fused_sampling_step_reference(logits, temperature)
    entropy = torch.distributions.Categorical(logits=processed).entropy()
    probs = torch.softmax(processed, -1)
    torch.testing.assert_close(stats.entropy, entropy, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats.confidence, probs.max(-1).values, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(stats.logsumexp, torch.logsumexp(processed, -1), atol=1e-5, rtol=0)
    assert torch.equal(stats.argmax, processed.argmax(-1))
    capped = S.fused_sampling_step_reference(logits * 20, temperature, softcap=30.0)
    want = torch.distributions.Categorical(
        logits=30.0 * torch.tanh(logits * 20 / 30.0) / temperature
    )
    torch.testing.assert_close(capped.entropy, want.entropy(), atol=1e-5, rtol=1e-5)


def _chi_square(samples: torch.Tensor, probs: torch.Tensor) -> float:
    counts = torch.bincount(samples, minlength=probs.numel()).double()
    expected = probs.double() * samples.numel()
    return float(((counts - expected) ** 2 / expected).sum())


# chi-square critical value at p = 1e-4 for 5 degrees of freedom: a false alarm 1 run in 10,000.
CHI2_CRIT_DF5 = 25.74


def test_hash_gumbel_samples_follow_softmax_across_rows(device):
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 1.5])  # [V], a small vocab
    temperature = 0.8
    probs = torch.softmax(logits / temperature, -1)
    rows = 40_000
    batch = logits.expand(rows, -1).contiguous()  # [rows, V]: one canvas row per draw
    want = S.fused_sampling_step_reference(batch, temperature, None, seed=123)
    assert _chi_square(want.sampled, probs) < CHI2_CRIT_DF5
    # The kernel draws the same ids (its rows are the reference's first rows: same counters).
    got = S.fused_sampling_step(batch[:64].to(device), temperature, None, seed=123, block=16)
    assert torch.equal(got.sampled.cpu(), want.sampled[:64])


def test_hash_gumbel_samples_follow_softmax_across_steps():
    # One canvas position redrawn at every step: the noise must be fresh per step seed.
    logits = torch.tensor([[0.3, -0.2, 1.1, 0.0, 0.7, -1.5]])  # [1, V]
    probs = torch.softmax(logits[0], -1)
    draws = torch.stack(
        [S.fused_sampling_step_reference(logits, 1.0, None, S.step_seed(7, k)).sampled[0]
         for k in range(4000)]
    )  # fmt: skip
    assert _chi_square(draws, probs) < CHI2_CRIT_DF5
    # Consecutive steps are not correlated: P(same id twice) matches sum p^2.
    same = float((draws[1:] == draws[:-1]).double().mean())
    assert abs(same - float((probs**2).sum())) < 0.04, same


def test_dispatcher_uses_reference_off_cuda():
    logits = _logits((4, 100), torch.bfloat16, "cpu", seed=10)
    got = S.sampling_step(logits, 0.5, None, seed=2)
    want = S.fused_sampling_step_reference(logits, 0.5, None, seed=2)
    for name, value in vars(want).items():
        assert torch.equal(getattr(got, name), value), name


def test_missing_triton_disables_only_the_kernel(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "triton", None)
    monkeypatch.setitem(__import__("sys").modules, S.__package__ + "._sampling_kernel", None)
    S._kernels.cache_clear()
    S.triton_available.cache_clear()
    try:
        assert not S.triton_available()
        stats = S.sampling_step(_logits((2, 50), torch.float32, "cpu"), 1.0)
        assert stats.sampled.shape == (2,)
    finally:
        monkeypatch.undo()
        S._kernels.cache_clear()
        S.triton_available.cache_clear()
