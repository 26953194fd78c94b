"""Precision and memory: what each option really saves, the load report, and clear refusals."""

from __future__ import annotations

import pytest
import torch
from diffgem_model.checkpoint import CheckpointError, load_checkpoint
from diffgem_model.memory import MemoryEstimate, estimate, kv_bytes_per_token, parameter_groups
from diffgem_model.precision import PRECISIONS, quant_report
from diffgem_model.real_config import real_config


@pytest.fixture(scope="module")
def full_size():
    config = real_config()
    return config, parameter_groups(config)


def test_full_size_config_matches_the_published_totals(full_size):
    config, groups = full_size
    total = sum(groups.values())
    assert abs(total - 25.2e9) / 25.2e9 < 0.01  # 25.2B parameters
    assert abs(groups["experts"] / total - 0.905) < 0.005  # experts are 90.5% of them
    assert kv_bytes_per_token(config, torch.bfloat16) == 220 * 1024  # ~220 KiB per token


def test_what_each_precision_really_saves(full_size):
    config, _ = full_size
    weights = {p: estimate(config, p, "cpu").weights for p in ("bf16", "fp8", "int8", "int4")}
    assert abs(weights["bf16"] - 50.5e9) / 50.5e9 < 0.01
    assert weights["fp8"] < 0.55 * weights["bf16"]  # FP8 experts halve the model
    # bitsandbytes leaves the fused 3-D experts in bf16: int8/int4 save under 10% on this MoE.
    assert weights["int8"] > 0.9 * weights["bf16"] and weights["int4"] > 0.9 * weights["bf16"]


def test_a_model_that_cannot_fit_says_so_with_figures():
    tight = MemoryEstimate(
        "bf16", "cuda:0", 50 << 30, 1 << 30, 1 << 30, 1 << 29, 20 << 30, 24 << 30
    )
    assert not tight.fits
    message = tight.message()
    assert "will not fit" in message and "needs 52.5 GiB" in message and "20.0 GiB free" in message
    assert tight.as_dict()["fits"] is False


def test_load_report_counts_quantised_and_kept_bytes(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint, "cpu", precision="auto")
    assert checkpoint.precision == "fp32"
    report = checkpoint.quant_report
    assert report is not None and report.quantised_bytes == 0
    params = sum(p.numel() * p.element_size() for p in checkpoint.model.parameters())
    assert params <= report.kept_bytes < params * 1.01  # plus small float buffers (rotary tables)
    # Storing one projection as int8 (what bitsandbytes does to nn.Linear) shows up as quantised.
    model = checkpoint.model
    proj = model.model.decoder.layers[0].self_attn.q_proj
    proj.weight = torch.nn.Parameter(
        torch.zeros_like(proj.weight, dtype=torch.int8), requires_grad=False
    )
    after = quant_report(model, "int8")
    assert after.quantised == {"attention": proj.weight.numel()}
    assert "quantised" in after.describe() and "kept" in after.describe()


@pytest.mark.parametrize("precision", ["fp8", "int8", "int4"])
def test_gpu_only_precisions_refuse_clearly_on_cpu(tiny_checkpoint, precision):
    with pytest.raises(CheckpointError, match="needs a CUDA GPU"):
        load_checkpoint(tiny_checkpoint, "cpu", precision=precision)


def test_unknown_precision_lists_the_choices(tiny_checkpoint):
    with pytest.raises(CheckpointError, match=", ".join(PRECISIONS)):
        load_checkpoint(tiny_checkpoint, "cpu", precision="fp16")
