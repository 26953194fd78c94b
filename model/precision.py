"""Precision at load time: `auto|fp32|bf16|fp8|int8|int4` to a dtype and quantisation config, and an
honest account afterwards of how many bytes were really quantised and what stayed in 16/32-bit.

Boundary: chooses load arguments and inspects a loaded model; it loads nothing itself (checkpoint.py does).

What each option can save on DiffusionGemma (experts are 90.5% of the parameters, as fused 3-D tensors):
- fp8: transformers' FineGrainedFP8 replaces `nn.Linear` layers *and* `*.experts` with FP8 weights (1 byte
  plus a scale per 128x128 block) — needs compute capability >= 8.9; older GPUs would silently dequantise
  to bf16 (transformers/quantizers/quantizer_finegrained_fp8.py), so this module refuses instead.
- int8/int4: bitsandbytes replaces `nn.Linear` only; the fused 3-D expert tensors and the tied embeddings
  stay bf16 (bitsandbytes-foundation/bitsandbytes#1849), so they save a few percent on this model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp8", "int8", "int4")
QUANTISED_DTYPES = {torch.int8, torch.uint8, torch.float8_e4m3fn, torch.float8_e5m2}


class PrecisionError(ValueError):
    """A precision this device or installation cannot load, with what to do instead."""


def resolve_precision(precision: str, device: str) -> str:
    if precision not in PRECISIONS:
        raise PrecisionError(
            f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}"
        )
    if precision == "auto":
        return "bf16" if device.startswith("cuda") else "fp32"
    return precision


def load_kwargs(precision: str, device: str) -> dict[str, Any]:
    """`from_pretrained` keyword arguments for a resolved precision on `device`."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return {"dtype": torch.float32}
    if precision == "bf16":
        return {"dtype": torch.bfloat16}
    if not device.startswith("cuda"):
        raise PrecisionError(
            f"precision {precision!r} needs a CUDA GPU; on {device} use fp32 or bf16"
        )
    if precision == "fp8":
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        if (major, minor) < (8, 9):
            raise PrecisionError(
                f"precision 'fp8' needs compute capability >= 8.9 (Ada, Hopper, Blackwell); this GPU is "
                f"{major}.{minor}, where transformers would quietly keep bf16 weights. Use int8, int4 or bf16."
            )
        from transformers import FineGrainedFP8Config

        return {"dtype": torch.bfloat16, "quantization_config": FineGrainedFP8Config()}
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise PrecisionError(
            f"precision {precision!r} needs bitsandbytes: pip install 'diffgem-lsp[gpu]'"
        ) from exc
    from transformers import BitsAndBytesConfig

    if precision == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    return {"dtype": torch.bfloat16, "quantization_config": config}


def tensor_group(name: str) -> str:
    """Which part of DiffusionGemma a parameter name belongs to, for the load report."""
    if "vision" in name:
        return "vision tower"
    if "experts" in name:
        return "experts"
    if "embed" in name or "lm_head" in name:
        return "embeddings"
    if "attn" in name or "attention" in name:
        return "attention"
    if "mlp" in name or "router" in name:
        return "dense MLP and router"
    return "norms and other"


@dataclass
class QuantReport:
    precision: str
    quantised: dict[str, int] = field(default_factory=dict)  # group -> bytes in int8/uint8/fp8
    kept: dict[str, int] = field(default_factory=dict)  # group -> bytes left in 16/32-bit

    @property
    def quantised_bytes(self) -> int:
        return sum(self.quantised.values())

    @property
    def kept_bytes(self) -> int:
        return sum(self.kept.values())

    def describe(self) -> str:
        def part(groups: dict[str, int]) -> str:
            ordered = sorted(groups.items(), key=lambda kv: -kv[1])
            return ", ".join(f"{g} {_gb(b)}" for g, b in ordered if b) or "nothing"

        total = self.quantised_bytes + self.kept_bytes
        share = self.quantised_bytes / max(1, total)
        return (
            f"{self.precision}: {_gb(total)} of weights; quantised {_gb(self.quantised_bytes)} "
            f"({share:.0%}: {part(self.quantised)}); kept in 16/32-bit {_gb(self.kept_bytes)} "
            f"({part(self.kept)})"
        )


def quant_report(model: torch.nn.Module, precision: str) -> QuantReport:
    """Count the bytes a loaded model really holds, by storage dtype (tied tensors once)."""
    quantised: dict[str, int] = defaultdict(int)
    kept: dict[str, int] = defaultdict(int)
    seen: set[int] = set()
    named = list(model.named_parameters()) + list(model.named_buffers())
    for name, tensor in named:
        if (
            id(tensor) in seen
            or not tensor.is_floating_point()
            and tensor.dtype not in QUANTISED_DTYPES
        ):
            continue
        seen.add(id(tensor))
        nbytes = tensor.numel() * tensor.element_size()
        (quantised if tensor.dtype in QUANTISED_DTYPES else kept)[tensor_group(name)] += nbytes
    return QuantReport(precision, dict(quantised), dict(kept))


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"
