"""Forwards per request vs exact match: the confidence rule's commit threshold on real single-line holes.

Boundary: runs the engine in process on rest-of-line holes cut the way `make eval` cuts them
(`diffgem_model.train.holes.single_line_holes`) from standard-library files; `bench/speed.py` calls
`measure_steps()`. Fast-dLLM (arXiv:2505.22618) commits every position whose probability clears the
threshold; a lower threshold commits more per forward and risks more wrong tokens — this table is the
trade on the embedded model, side by side, with everything else at the LSP's defaults.
"""

from __future__ import annotations

import random
import statistics
import sysconfig
import time
from dataclasses import replace
from pathlib import Path

from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.sampler import SamplerSettings
from diffgem_model.train.evaluate import same
from diffgem_model.train.holes import single_line_holes

STDLIB = Path(sysconfig.get_paths()["stdlib"])
HOLE_FILES = ["textwrap.py", "shlex.py", "bisect.py", "colorsys.py", "fnmatch.py", "glob.py"]
THRESHOLDS = (0.9, 0.8, 0.7, 0.5)


def holes(engine: Engine, per_file: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    out = []
    for name in HOLE_FILES:
        text = (STDLIB / name).read_text()
        # "editor": the cursor anywhere in the line, as where a typist's cursor rests.
        out += single_line_holes(
            text, name, "python", engine.tokenizer, rng, engine.canvas_length, per_file, "editor"
        )
    return out


def measure_steps(engine: Engine | None = None, per_file: int = 8) -> dict:
    engine = engine or Engine.load(device="cpu")
    base = SamplerSettings(rule="confidence", max_steps=8, **engine.sampler_defaults())
    cases = holes(engine, per_file)
    rows = {}
    for tau in THRESHOLDS:
        sampler = replace(base, confidence_threshold=tau)
        hits, forwards, tokens, short_forwards, ms = 0, [], [], [], []
        for h in cases:
            t = time.perf_counter()
            r = engine.generate(GenerateParams(prefix=h.prefix, suffix=h.suffix, sampler=sampler))
            ms.append((time.perf_counter() - t) * 1000)
            text = r.text.split("\n")[0]  # a single-line hole keeps its first line, as the LSP does
            hits += same(text, h.middle)
            forwards.append(r.forwards)
            tokens.append(r.tokens_per_forward)
            if 1 <= len(r.token_ids) <= 4:  # the case: a fill of a few tokens
                short_forwards.append(r.forwards)
        rows[str(tau)] = {
            "exact_match": hits / max(len(cases), 1),
            "forwards_per_request": statistics.mean(forwards),
            "tokens_per_forward": statistics.mean(tokens),
            "forwards_1_to_4_token_fills": statistics.mean(short_forwards)
            if short_forwards
            else None,
            "n_1_to_4_token_fills": len(short_forwards),
            "request_ms_p50": statistics.median(ms),
        }
    return {"holes": len(cases), "files": HOLE_FILES, "thresholds": rows}


def markdown(r: dict) -> str:
    out = [
        f"{r['holes']} rest-of-line holes from {', '.join(r['files'])} (cut as `make eval` cuts them)",
        "",
        "| commit threshold | exact match | forwards / request | tokens / forward "
        "| forwards, fills of 1-4 tokens | request p50 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for tau, row in r["thresholds"].items():
        short = row["forwards_1_to_4_token_fills"]
        out.append(
            f"| {tau} | {100 * row['exact_match']:.1f}% | {row['forwards_per_request']:.2f} "
            f"| {row['tokens_per_forward']:.2f} "
            f"| {'n/a' if short is None else f'{short:.2f}'} (n={row['n_1_to_4_token_fills']}) "
            f"| {row['request_ms_p50']:.0f} |"
        )
    return "\n".join(out) + "\n"
