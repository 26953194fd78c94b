"""The lean CPU step's matmul precision (fp32, bf16, int8) on `make eval`'s holes: exact match and
request time, decided on validation, reported on test.

Boundary: decodes the same holes as `bench/threshold_eval.py` (built as `make eval` builds them) at the
LSP's automatic settings (8 steps, the checkpoint's temperatures, the LSP's default commit threshold),
once per precision (one engine each, one after the other on the same machine), so each
row names its load. Writes
bench/precision_eval_<split>.json and bench/precision_eval.md. Issue 15: bf16 (where the CPU has
AMX-BF16/AVX512-BF16) and int8 dynamic quantisation may become the default only where they hold exact
match within 1 point of fp32's. Run: `nice -n 10 .venv/bin/python bench/precision_eval.py --split
validation`, then `--split test`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from diffgem_model.fast_decoder import MATMUL_SWITCH, cpu_has_native_bf16
from threshold_eval import (
    ALLOWED_LOSS,
    eval_arguments,
    evaluate,
    load_average,
    load_splits,
    outcome_cells,
)

BENCH = Path(__file__).resolve().parent
PRECISIONS = ("fp32", "bf16", "int8")
LSP_THRESHOLD = 0.7  # diffgem_lsp/settings.py: Settings.confidence_threshold
DEFAULT = (
    "The default (`DIFFGEM_LEAN_MATMUL=auto`, diffgem_model/fast_decoder.py `matmul_precision`) is "
    "**bf16 where the CPU multiplies bf16 natively** (AMX-BF16 / AVX512-BF16), fp32 elsewhere: bf16 is "
    "within the bound on validation and has the lowest request time; int8 is within it too but "
    "encodes long prompts slower than AMX bf16 (request p50 column), so it is a choice, not a default."
)


def run(split: str, precisions: tuple[str, ...], scale: float, threads: int) -> dict:
    rows = {}
    for precision in precisions:
        os.environ[MATMUL_SWITCH] = (
            precision  # read by LeanDecoder when decode_all loads the engine
        )
        before = load_average()
        result = evaluate(split, (LSP_THRESHOLD,), scale, threads)
        row = result["rows"][str(LSP_THRESHOLD)]
        row["load"] = f"{before} → {load_average()}"
        rows[precision] = row
        holes = result["holes"]
    return {"split": split, "holes": holes, "threshold": LSP_THRESHOLD, "rows": rows}


def decide(validation: dict) -> list[str]:
    """Precisions whose validation exact match is within ALLOWED_LOSS of fp32's."""
    base = validation["rows"]["fp32"]["exact_match"]
    return [p for p, r in validation["rows"].items() if base - r["exact_match"] <= ALLOWED_LOSS]


def markdown(r: dict) -> str:
    out = [
        "# Lean step matmul precision vs exact match on `make eval`'s holes "
        f"(LSP automatic settings: 8 steps, threshold {LSP_THRESHOLD})",
        "",
        f"CPU has native bf16 (AMX-BF16 / AVX512-BF16): {cpu_has_native_bf16()}. Within "
        f"{100 * ALLOWED_LOSS:.0f} point of fp32's exact match on validation: "
        f"**{', '.join(r['within']) if 'within' in r else 'n/a (no validation run)'}**.",
        "",
        DEFAULT,
        "",
        "| split | holes | matmul | exact match | vs fp32 (points) | single-line EM | forwards / request "
        "| empty | request p50 (ms) | load average |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for split in ("validation", "test"):
        if split not in r:
            continue
        s = r[split]
        base = s["rows"]["fp32"]["exact_match"]
        for precision, row in s["rows"].items():
            out.append(
                f"| {split} | {s['holes']} | {precision} | {100 * row['exact_match']:.1f}% "
                f"({row['hits']}) | {100 * (row['exact_match'] - base):+.2f} "
                f"{outcome_cells(row)}| {row['load']} |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    p = eval_arguments(__doc__.splitlines()[0])
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma list; fp32 first")
    args = p.parse_args()
    precisions = tuple(args.precisions.split(","))
    assert precisions[0] == "fp32", "fp32 is the reference row"
    result = run(args.split, precisions, args.scale, args.threads)
    (BENCH / f"precision_eval_{args.split}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(write_markdown())


def write_markdown() -> str:
    """bench/precision_eval.md from whichever splits have run (validation decides, test reports)."""
    r = load_splits("precision_eval")
    if "validation" in r:
        r["within"] = decide(r["validation"])
    text = markdown(r)
    (BENCH / "precision_eval.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
