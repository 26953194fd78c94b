"""diffgem_kernels: fused GPU kernels for the diffusion engine's hot loop, each with a torch reference.
Depends on torch only; Triton is imported lazily and is optional (the references always work).
"""

from .sampling import (
    SamplingStats,
    fused_sampling_step,
    fused_sampling_step_reference,
    gumbel_noise,
    sampling_step,
    step_seed,
    triton_available,
)

__all__ = [
    "SamplingStats",
    "fused_sampling_step",
    "fused_sampling_step_reference",
    "gumbel_noise",
    "sampling_step",
    "step_seed",
    "triton_available",
]
