"""Shared fixtures: a tiny random DiffusionGemma checkpoint made on the fly (unit tests only)."""

from __future__ import annotations

import glob
import os
import sysconfig
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The lean step's matmuls in fp32 for every worker the tests start: `auto` picks bf16 only on CPUs with
# AMX-BF16/AVX512-BF16, and the end-to-end fixtures (holes that get a fill, drafts that stream) were
# chosen on fp32's answers, which must not depend on the CI machine's CPU. bf16 and int8 have their own
# tests (tests/unit/test_fast_decoder.py), which ask for them explicitly.
os.environ.setdefault("DIFFGEM_LEAN_MATMUL", "fp32")


def stdlib_texts(limit: int = 60) -> list[str]:
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))[:limit]
    return [Path(f).read_text(errors="ignore") for f in files]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from tests.tiny_model import make_random_checkpoint

    return make_random_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", stdlib_texts(), seed=0)


def pytest_addoption(parser):
    # Here, at the tests root, so that `pytest --update-golden` works from any directory (pytest reads
    # options only from the conftest files it loads before parsing the command line).
    parser.addoption("--update-golden", action="store_true", help="rewrite canvas golden files")
