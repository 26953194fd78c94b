"""What the in-process model evals share: the engine with the server's sampler, the report header, the writer.

Boundary: bench/ only (holes_eval.py, repair_eval.py, candidates_bench.py, context_eval.py); loads the
embedded checkpoint through diffgem_model and reads the server's settings, never an LSP process. Each
eval keeps its own cases, scoring and table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The machine's load when the eval started (this module is imported first): a report is written at
# the end, when the eval's own work is part of the load.
LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]


def load_engine(threads: int, automatic: bool = False) -> tuple[Any, Any]:
    """(engine, sampler settings): the embedded checkpoint on the CPU with `threads` intra-op threads,
    and what the server sends for an invoked request or code action (pipelines.sampler_settings on the
    default settings) with the checkpoint's temperature schedule, as the worker applies it."""
    import torch
    from diffgem_model.engine import Engine
    from diffgem_model.worker import with_checkpoint_schedule

    from diffgem_lsp.pipelines import sampler_settings
    from diffgem_lsp.settings import Settings

    torch.set_num_threads(threads)
    engine = Engine.load(device="cpu")
    settings = with_checkpoint_schedule(
        sampler_settings(Settings(), automatic=automatic), engine.sampler_defaults()
    )
    return engine, settings


def header(script: str, threads: int, engine: Any) -> dict[str, Any]:
    """The fields every report starts with: the exact command, the machine, its load, the checkpoint."""
    return {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, {threads} thread(s)",
        "load_average": LOAD_AT_START,
        "model": engine.description,
    }


def write_report(
    out: Path, report: dict[str, Any], markdown: Callable[[dict[str, Any]], str]
) -> None:
    """`out`.json (the report) and `out`.md (its table), and the table on stdout."""
    report.setdefault("load_average_at_end", [round(x, 2) for x in os.getloadavg()])
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    out.with_suffix(".md").write_text(text)
    print(text)
