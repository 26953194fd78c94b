"""Kernel-test setup: run Triton kernels on CPU tensors through Triton's interpreter.
Must take effect before any kernel is decorated, so it is set here at collection time.
"""

from __future__ import annotations

import os

# Read by triton.jit when `_sampling_kernel` is first imported (lazily, on the first kernel call).
# Set TRITON_INTERPRET=0 on a GPU machine to test the compiled kernel on CUDA instead.
os.environ.setdefault("TRITON_INTERPRET", "1")
