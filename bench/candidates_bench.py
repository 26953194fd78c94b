"""K candidates for an invoked completion: K sequential passes vs one batched denoise of K rows, side by side.

Drives the engine in-process (the embedded checkpoint) with the server's own canvas, request and
post-processing (pipelines.infill_params, canvas.postprocess_infill, canvas.rank_candidates). Holes:
the rest of a line from an editor cursor (model/train/holes.single_line_holes, position "editor") in
files of the held-out validation split (package-level split, model/train/sources.py), or --split test.
Per hole, both methods (the worker's two paths, model/candidates.py) run back to back (alternating
which goes first); reported: wall ms and forwards per request, distinct shown candidates, and exact
match of the first shown candidate and of any of the K (the best-of-K gain over a single pass). Writes bench/candidates_results.{json,md}; asserts nothing.

    nice -n 10 .venv/bin/python bench/candidates_bench.py [--holes 40] [--k 4] [--split validation]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffgem_model.candidates import batches_rows  # noqa: E402

from bench.eval_common import header, load_engine, write_report  # noqa: E402
from diffgem_lsp import canvas as C  # noqa: E402
from diffgem_lsp.canvas.candidates import distinct_fraction, rank_candidates  # noqa: E402
from diffgem_lsp.pipelines import infill_params  # noqa: E402
from diffgem_lsp.settings import Settings  # noqa: E402

CORPUS = ROOT / "model/data/corpus.jsonl"


def load_holes(split: str, count: int, tok, canvas: int, seed: int = 0) -> list:
    """Editor-cursor rest-of-line holes over the split's files, languages interleaved, one per file."""
    from diffgem_model.train.holes import single_line_holes

    records = [json.loads(line) for line in CORPUS.open()]
    records = sorted((r for r in records if r["split"] == split), key=lambda r: r["sha256"])
    rng = random.Random(seed)
    rng.shuffle(records)
    by_language: dict[str, list] = {}
    for r in records:
        if len(by_language.get(r["language"], [])) >= count:
            continue
        found = single_line_holes(
            r["text"], r["origin"], r["language"], tok, rng, canvas, 1, "editor"
        )
        by_language.setdefault(r["language"], []).extend(found)
    mixed = [h for group in zip(*by_language.values(), strict=False) for h in group]
    return mixed[:count]


def shown(canvas, texts_scores: list[tuple[str, float]], k: int) -> list[str]:
    """What the server shows: post-processed, deduplicated, ranked (edit_pipelines.infill_candidates)."""
    fills = []
    for text, score in texts_scores:
        processed = C.postprocess_infill(canvas, text)
        fills.append((None if processed is None else processed.insert_text, score))
    return [r.text for r in rank_candidates(fills, k)]


def sequential(engine, params, k: int) -> tuple[list[tuple[str, float]], int]:
    """The worker's CPU path: K single-row passes (model/candidates.py)."""
    from diffgem_model.candidates import generate_candidates_sequential

    result = generate_candidates_sequential(engine, replace(params, candidates=k))
    assert result.candidates is not None
    return [(c.text, c.mean_logprob) for c in result.candidates], result.forwards


def batched(engine, params, k: int) -> tuple[list[tuple[str, float]], int]:
    """The worker's accelerator path: one batched denoise of K rows (model/candidates.py)."""
    from diffgem_model.candidates import generate_candidates_batched

    result = generate_candidates_batched(engine, replace(params, candidates=k))
    assert result.candidates is not None
    return [(c.text, c.mean_logprob) for c in result.candidates], result.forwards


def markdown(report: dict) -> str:
    out = [
        "# K candidates: sequential passes vs one batched denoise",
        "",
        f"`{report['command']}` on {report['machine']}, load average {report['load_average']} at the"
        f" start, {report['load_average_at_end']} at the end; checkpoint: {report['model']}.",
        "",
        f"{report['holes']} rest-of-line holes at editor cursor positions in files of the held-out"
        f" `{report['split']}` split; K = {report['k']}; the server's invoked-request settings. Both",
        "methods post-process, deduplicate and rank as the server does. *First shown exact*: the",
        "top-ranked candidate equals the line's real rest; *any exact*: one of the shown candidates",
        "does (an editor cycling through them can reach it). *Single pass* is seed 0 alone (what an",
        "automatic request shows).",
        "",
        "| method | ms / request (median) | ms (mean) | forwards / request | shown (mean) |"
        " distinct rows | first shown exact | any exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in report["methods"].items():
        out.append(
            f"| {name} | {r['ms_median']:.0f} | {r['ms_mean']:.0f} | {r['forwards']:.1f} "
            f"| {r['shown']:.2f} | {r['distinct']:.1%} | {r['first_exact']:.1%} | {r['any_exact']:.1%} |"
        )
    ratio = report["methods"]["sequential"]["ms_median"] / max(
        report["methods"]["batched"]["ms_median"], 1e-9
    )
    paired = report.get("paired_ratio_median")
    out += [
        "",
        f"Sequential / batched median time: {ratio:.2f} (above 1: batched is faster)"
        + (f"; per hole, median of the paired ratios {paired:.2f}." if paired else "."),
        "On a CPU a batched forward of K rows costs about K single-row forwards and runs through HF's",
        "forward, not the lean single-row step (model/fast_decoder.py); fewer forwards do not make up",
        f"for it. The worker on this device ({report.get('device', 'cpu')}) runs"
        f" **{report.get('worker_picks', 'n/a')}** (model/candidates.py `batches_rows`).",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holes", type=int, default=40)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/candidates_results")
    args = parser.parse_args()

    engine, sampler = load_engine(args.threads)
    server = Settings()
    holes = load_holes(args.split, args.holes, engine.tokenizer, engine.canvas_length)
    report: dict = header("candidates_bench.py", args.threads, engine) | {
        "split": args.split,
        "k": args.k,
        "holes": 0,
    }
    methods = {"sequential": sequential, "batched": batched}
    rows: dict[str, list[dict]] = {name: [] for name in methods}
    single_exact = []
    for n, hole in enumerate(holes):
        document = hole.prefix + hole.suffix
        canvas = C.build_infill_canvas(
            document, hole.language, C.position_at(document, len(hole.prefix))
        )
        if canvas is None:
            continue
        params = replace(infill_params(canvas, server, automatic=False), sampler=sampler)
        want = hole.middle.rstrip()
        order = list(methods) if n % 2 == 0 else list(reversed(methods))
        for name in order:
            t0 = time.perf_counter()
            fills, forwards = methods[name](engine, params, args.k)
            ms = (time.perf_counter() - t0) * 1000
            texts = shown(canvas, fills, args.k)
            rows[name].append(
                {
                    "ms": ms,
                    "forwards": forwards,
                    "shown": len(texts),
                    "distinct": distinct_fraction([t for t, _ in fills]),
                    "first_exact": bool(texts) and texts[0].rstrip() == want,
                    "any_exact": any(t.rstrip() == want for t in texts),
                }
            )
            if name == "sequential":
                first = C.postprocess_infill(canvas, fills[0][0])
                single_exact.append(first is not None and first.insert_text.rstrip() == want)
        report["holes"] += 1
    report["methods"] = {
        name: {
            "ms_median": statistics.median(r["ms"] for r in rs),
            "ms_mean": statistics.fmean(r["ms"] for r in rs),
            "forwards": statistics.fmean(r["forwards"] for r in rs),
            "shown": statistics.fmean(r["shown"] for r in rs),
            "distinct": statistics.fmean(r["distinct"] for r in rs),
            "first_exact": statistics.fmean(r["first_exact"] for r in rs),
            "any_exact": statistics.fmean(r["any_exact"] for r in rs),
        }
        for name, rs in rows.items()
    }
    report["paired_ratio_median"] = statistics.median(
        a["ms"] / max(b["ms"], 1e-9)
        for a, b in zip(rows["sequential"], rows["batched"], strict=True)
    )
    report["device"] = str(engine.model.device)
    report["worker_picks"] = "batched" if batches_rows(engine) else "sequential"
    report["single_pass_exact"] = statistics.fmean(single_exact) if single_exact else 0.0
    write_report(args.out, report, lambda r: markdown(r) + _single(r))


def _single(report: dict) -> str:
    return f"Single pass (seed 0) exact: {report['single_pass_exact']:.1%}.\n"


if __name__ == "__main__":
    main()
