"""The confidence rule's commit threshold on `make eval`'s holes: decided on validation, reported on test.

Boundary: builds the holes exactly as `python -m diffgem_model.train.evaluate` does (same corpus split,
seed, scale, cut) and decodes them with its `decode_all` at the LSP's automatic settings (8 steps, the
checkpoint's temperatures), once per threshold; writes bench/threshold_eval_<split>.json and .md. Fast-dLLM
(arXiv:2505.22618) commits every position whose probability clears the threshold: lower commits more
tokens per forward and risks wrong ones. The LSP's default may drop from 0.9 only where validation exact
match falls by at most 1 point (issue 15). Run: `nice -n 10 .venv/bin/python bench/threshold_eval.py
--split validation`, then `--split test --thresholds 0.9,<chosen>`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from diffgem_model.fast_decoder import MATMUL_SWITCH
from diffgem_model.train.corpus import load
from diffgem_model.train.evaluate import EMBEDDED, decode_all, same
from diffgem_model.train.holes import build_holes
from transformers import AutoTokenizer

BENCH = Path(__file__).resolve().parent
THRESHOLDS = (0.9, 0.8, 0.7)
ALLOWED_LOSS = 0.01  # issue 15: no more than 1 point of exact match
# Why the LSP's default is not the validation choice: the grid first ran 0.9/0.8/0.7 (choice 0.7, test
# -0.74 points); extended to 0.6/0.5 later (each such row names its own load), validation chose 0.5, whose test
# loss (-1.04 points) is past the bound, so the default stayed 0.7 and no other threshold was tried on test.
KEPT_DEFAULT = (
    "The LSP default is **0.7**: the grid first ran 0.9, 0.8, 0.7 (choice 0.7; test −0.74 points). "
    "Extended later to 0.6 and 0.5 (run 2026-12-01 at load ~2), validation chose 0.5, "
    "whose test exact match is 1.04 points below 0.9's, past the 1-point bound; so the default stayed "
    "0.7 and no other threshold was run on test."
)


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def evaluate(split: str, thresholds: tuple[float, ...], scale: float, threads: int) -> dict:
    tok = AutoTokenizer.from_pretrained(EMBEDDED)
    config = json.loads((EMBEDDED / "config.json").read_text())
    gen = json.loads((EMBEDDED / "generation_config.json").read_text())
    holes = build_holes(load(split), tok, config["canvas_length"], seed=0, scale=scale)
    steps = gen.get("max_denoising_steps") or 8
    rows = {}
    for tau in thresholds:
        t0 = time.perf_counter()
        preds, lat, extra = decode_all(
            EMBEDDED,
            holes,
            steps,
            threads,
            rule="confidence",
            t_max=gen["t_max"],
            t_min=gen["t_min"],
            confidence_threshold=tau,
        )
        hits = [same(p, h.middle) for p, h in zip(preds, holes, strict=True)]
        single = [i for i, h in enumerate(holes) if h.kind == "single_line"]
        rows[str(tau)] = {
            "exact_match": sum(hits) / len(holes),
            "hits": sum(hits),
            "exact_match_single_line": sum(hits[i] for i in single) / max(1, len(single)),
            "forwards_per_request": statistics.mean(e["forwards"] for e in extra),
            "empty": sum(not p.strip() for p in preds) / len(holes),
            "latency_ms_p50": statistics.median(lat),
            "minutes": (time.perf_counter() - t0) / 60,
        }
        print(split, tau, rows[str(tau)], flush=True)
    return {"split": split, "holes": len(holes), "scale": scale, "steps": steps, "rows": rows}


def decide(validation: dict) -> float:
    """The lowest threshold whose validation exact match is within ALLOWED_LOSS of 0.9's."""
    base = validation["rows"]["0.9"]["exact_match"]
    ok = [
        float(t) for t, r in validation["rows"].items() if base - r["exact_match"] <= ALLOWED_LOSS
    ]
    return min(ok)


def markdown(r: dict) -> str:
    out = [
        "# Commit threshold vs exact match on `make eval`'s holes (LSP automatic settings: 8 steps)",
        "",
        f"Chosen on validation (lowest threshold within {100 * ALLOWED_LOSS:.0f} point of 0.9's exact "
        f"match): **{r['chosen']}**.",
        "",
        KEPT_DEFAULT,
        "",
        "| split | holes | threshold | exact match | single-line EM | forwards / request | empty "
        "| request p50 (ms) | load average |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for split in ("validation", "test"):
        if split not in r:
            continue
        s = r[split]
        for tau, row in s["rows"].items():
            out.append(
                f"| {split} | {s['holes']} | {tau} | {100 * row['exact_match']:.1f}% ({row['hits']}) "
                f"{outcome_cells(row)}| {row.get('load', s.get('load', 'n/a'))} |"
            )
    return "\n".join(out) + "\n"


def outcome_cells(row: dict) -> str:
    """The columns an eval row shares with the other evals of these holes (after exact match)."""
    return (
        f"| {100 * row['exact_match_single_line']:.1f}% | {row['forwards_per_request']:.2f} "
        f"| {100 * row['empty']:.0f}% | {row['latency_ms_p50']:.0f} "
    )


def eval_arguments(description: str) -> argparse.ArgumentParser:
    """--split, --scale and --threads, as every eval of `make eval`'s holes takes them."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--split", default="validation", choices=("validation", "test"))
    p.add_argument("--scale", type=float, default=2.0, help="hole quotas, as evaluate --scale")
    p.add_argument("--threads", type=int, default=1)
    return p


def load_splits(name: str) -> dict:
    """bench/<name>_<split>.json of whichever splits have run, by split."""
    paths = {split: BENCH / f"{name}_{split}.json" for split in ("validation", "test")}
    return {split: json.loads(path.read_text()) for split, path in paths.items() if path.exists()}


def main() -> None:
    p = eval_arguments(__doc__.splitlines()[0])
    p.add_argument(
        "--thresholds", default="0.9,0.8,0.7", help="comma list; 0.9 (the old default) first"
    )
    args = p.parse_args()
    thresholds = tuple(float(t) for t in args.thresholds.split(","))
    # The rows above were decoded with fp32 matmuls (a CPU without native bf16): the same here on any
    # CPU. bench/precision_eval.py compares the precisions.
    os.environ.setdefault(MATMUL_SWITCH, "fp32")
    before = load_average()
    result = evaluate(args.split, thresholds, args.scale, args.threads)
    result["load"] = f"{before} → {load_average()}"
    (BENCH / f"threshold_eval_{args.split}.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown()


def write_markdown() -> dict:
    """bench/threshold_eval.md from whichever splits have run (validation decides, test reports)."""
    r = load_splits("threshold_eval")
    r["chosen"] = decide(r["validation"]) if "validation" in r else "n/a (no validation run)"
    (BENCH / "threshold_eval.md").write_text(markdown(r))
    print(markdown(r))
    return r


if __name__ == "__main__":
    main()
