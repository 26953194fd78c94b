"""Evaluate an infill checkpoint on the validation or test split: exact match, edit similarity, parses, empty, doctests.

Boundary: decodes with the project's own Engine (the LSP's path) on holes from holes.py and writes JSON +
markdown; builds the corpus first when it is missing (sources.py + corpus.py). No training logic here.
Modes: the shipped sampler; `--oracle-length` (EOS pinned right after the true middle, Dream-Coder's
"true length" setting, arXiv:2509.01142); `--candidates K` (candidates.py: K canvases, re-ranked).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections import defaultdict
from functools import partial
from pathlib import Path

import torch

from .corpus import DATA, load
from .holes import Hole, build_holes, edit_similarity, parses, run_doctest

EMBEDDED = Path(__file__).resolve().parent.parent / "embedded"


def ensure_corpus() -> None:
    """A fresh clone has no model/data: fetch the locked sources and build the corpus (a few minutes)."""
    if (DATA / "corpus.jsonl").exists():
        return
    missing = [tool for tool in ("npm", "apt-get", "dpkg-deb") if shutil.which(tool) is None]
    print(
        f"model/data/corpus.jsonl missing: building it (pip, npm, apt-get download){'; without ' + ', '.join(missing) + ' those languages are skipped' if missing else ''}"
    )
    from . import corpus, sources

    lock = json.loads(sources.LOCK.read_text()) if sources.LOCK.exists() else {}
    sources.fetch(DATA / "src", lock)
    corpus.build(DATA)


def previous_line_guess(prefix: str, n_lines: int) -> str:
    """Baseline: the text of the line(s) above, from the cursor's column on."""
    lines = prefix.split("\n")
    col = len(lines[-1])
    above = lines[-1 - n_lines : -1] if len(lines) > n_lines else []
    if not above:
        return ""
    return "\n".join([above[0][col:]] + above[1:])


def same(a: str, b: str) -> bool:
    return a.rstrip() == b.rstrip()


def group_key(h: Hole) -> str:
    return f"{h.language}/{h.kind}/{h.position}"


def score(holes: list[Hole], preds: list[str], latencies: list[float] | None = None) -> dict:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(holes):
        groups[group_key(h)].append(i)
    out = {}
    for key, idx in sorted(groups.items()):
        n = len(idx)
        row = {
            "n": n,
            "exact_match": sum(same(preds[i], holes[i].middle) for i in idx) / n,
            "edit_similarity": sum(
                edit_similarity(preds[i].rstrip(), holes[i].middle.rstrip()) for i in idx
            )
            / n,
            "parses": sum(
                parses(holes[i].prefix + preds[i] + holes[i].suffix, holes[i].language) for i in idx
            )
            / n,
            "empty": sum(not preds[i].strip() for i in idx) / n,
        }
        if key.endswith("/doctest/statement"):
            row["pass"] = sum(run_doctest(holes[i].test.format(fill=preds[i])) for i in idx) / n
        if latencies:
            row["latency_ms_median"] = statistics.median(latencies[i] for i in idx)
        out[key] = row
    return out


def _splices(hole: Hole, fill: str) -> bool:
    return parses(hole.prefix + cut_fill(fill, hole) + hole.suffix, hole.language)


def cut_fill(text: str, hole: Hole) -> str:
    """The LSP's own post-processing for single-line requests: keep the first line."""
    return text.split("\n")[0] if hole.kind in ("single_line", "doctest") else text


def decode_all(
    path: Path,
    holes: list[Hole],
    steps: int,
    threads: int,
    oracle: bool = False,
    candidates: int = 0,
    **sampler,
) -> tuple[list[str], list[float], list[dict]]:
    torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    from ..engine import Engine, GenerateParams
    from ..sampler import SamplerSettings, denoise

    eng = Engine.load(path, device=device)
    settings = SamplerSettings(max_steps=steps, **sampler)
    eng.infill("def f(x):\n    return ", "\n", steps=steps, seed=0, **sampler)  # warm-up
    preds, lat, extra = [], [], []
    for h in holes:
        t0 = time.perf_counter()
        if oracle:
            # True-length oracle: the canvas is cut to the real middle's length by pinning EOS after it.
            prompt = eng.build_prompt(GenerateParams(prefix=h.prefix, suffix=h.suffix))
            cache, _ = eng.prompt_cache.encode(prompt.ids)
            length = len(
                eng.tokenizer(prompt.healed + h.middle, add_special_tokens=False).input_ids
            )
            pinned = {
                p: eng.eos_ids[0]
                for p in range(min(length, eng.canvas_length - 1), eng.canvas_length)
            }
            result = denoise(
                eng.model,
                cache,
                canvas_length=eng.canvas_length,
                settings=settings,
                generator=torch.Generator(device=device).manual_seed(0),
                pinned=pinned,
                eos_ids=eng.eos_ids,
            )
            text = eng._heal(eng._decode(eng._until_eos(result.canvas)[0]), prompt.healed)
            info = {"forwards": result.forwards}
        elif candidates:
            from ..candidates import best_of

            pick = best_of(
                eng,
                h.prefix,
                h.suffix,
                k=candidates,
                settings=settings,
                accept=partial(_splices, h),
            )
            text, info = pick.text, {"forwards": pick.forwards, "chosen": pick.index}
        else:
            r = eng.infill(h.prefix, h.suffix, steps=steps, seed=0, **sampler)
            text, info = r.text, {"forwards": r.forwards}
        lat.append((time.perf_counter() - t0) * 1000)
        preds.append(cut_fill(text, h))
        extra.append(info)
    return preds, lat, extra


def markdown(results: dict) -> str:
    lines = [
        "| system | language / kind / cursor | n | exact match | edit sim. | parses | empty | doctest pass | p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for system, rows in results["systems"].items():
        for key, r in rows.items():
            passed = f"{r['pass']:.1%}" if "pass" in r else "-"
            latency = f"{r['latency_ms_median']:.0f}" if "latency_ms_median" in r else "-"
            lines.append(
                f"| {system} | {key} | {r['n']} | {r['exact_match']:.1%} | {r['edit_similarity']:.2f} | "
                f"{r['parses']:.1%} | {r['empty']:.1%} | {passed} | {latency} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=EMBEDDED)
    p.add_argument("--split", default="test", choices=("validation", "test"))
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the per-language hole quotas (holes.QUOTAS)",
    )
    p.add_argument("--languages", default="", help="comma list to keep (default: all in the split)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="default: the checkpoint's max_denoising_steps, else 16",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--rule",
        default="confidence",
        help="sampler commit rule: confidence (the LSP's default) | entropy",
    )
    p.add_argument(
        "--t-max",
        type=float,
        default=None,
        help="default: the checkpoint's generation_config t_max",
    )
    p.add_argument(
        "--t-min",
        type=float,
        default=None,
        help="default: the checkpoint's generation_config t_min",
    )
    p.add_argument(
        "--oracle-length", action="store_true", help="pin EOS right after the true middle's length"
    )
    p.add_argument(
        "--candidates", type=int, default=0, help="K candidates in one batched pass, re-ranked"
    )
    p.add_argument(
        "--limit", type=int, default=0, help="decode only the first N holes (after filters)"
    )
    p.add_argument(
        "--kinds", default="", help="comma list of kinds to keep (single_line,multi_line,doctest)"
    )
    p.add_argument("--out", type=Path, default=None, help="default: model/runs/eval/<split>")
    p.add_argument(
        "--save-holes", type=Path, help="write the holes as JSON lines and stop (for a GPU machine)"
    )
    p.add_argument(
        "--holes", type=Path, help="read holes saved with --save-holes (no corpus, no tree-sitter)"
    )
    p.add_argument(
        "--no-score", action="store_true", help="decode only: write samples.jsonl, score later"
    )
    p.add_argument(
        "--preds", type=Path, help="score the predictions in this samples.jsonl (no decoding)"
    )
    args = p.parse_args()
    if not args.holes:
        ensure_corpus()

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    canvas = json.loads((args.checkpoint / "config.json").read_text())["canvas_length"]
    # Sampler defaults travel with the checkpoint (generation_config.json), so `make eval` measures what ships.
    gen_path = args.checkpoint / "generation_config.json"
    gen = json.loads(gen_path.read_text()) if gen_path.exists() else {}
    args.steps = args.steps or gen.get("max_denoising_steps") or 16
    args.t_max = args.t_max if args.t_max is not None else gen.get("t_max")
    args.t_min = args.t_min if args.t_min is not None else gen.get("t_min")
    if args.holes:
        holes = [Hole(**json.loads(line)) for line in args.holes.read_text().splitlines()]
    else:
        holes = build_holes(load(args.split), tok, canvas, seed=0, scale=args.scale)
    # Filters apply after building, so a filtered run decodes exactly the unfiltered run's holes of that kind.
    if args.languages:
        holes = [h for h in holes if h.language in args.languages.split(",")]
    if args.save_holes:
        args.save_holes.write_text("".join(json.dumps(vars(h)) + "\n" for h in holes))
        print(f"saved {len(holes)} holes to {args.save_holes}")
        return
    if args.kinds:
        holes = [h for h in holes if h.kind in args.kinds.split(",")]
    if args.limit:
        holes = holes[: args.limit]
    print(
        f"{args.split}: {len(holes)} holes",
        dict(
            sorted(
                defaultdict(
                    int, {k: sum(group_key(h) == k for h in holes) for k in map(group_key, holes)}
                ).items()
            )
        ),
    )
    sampler = {
        k: v
        for k, v in (("rule", args.rule), ("t_max", args.t_max), ("t_min", args.t_min))
        if v is not None
    }
    if args.preds:
        saved = [json.loads(line) for line in args.preds.read_text().splitlines()]
        assert [s["truth"] for s in saved] == [h.middle for h in holes], (
            "predictions do not match these holes"
        )
        preds, lat, extra = (
            [s["pred"] for s in saved],
            [s.get("ms", 0.0) for s in saved],
            [{"forwards": s.get("forwards", 0)} for s in saved],
        )
    else:
        preds, lat, extra = decode_all(
            args.checkpoint,
            holes,
            args.steps,
            args.threads,
            args.oracle_length,
            args.candidates,
            **sampler,
        )
    out = args.out or Path(__file__).resolve().parent.parent / "runs" / "eval" / args.split
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "samples.jsonl", "w") as f:
        for h, pr, ms, e in zip(holes, preds, lat, extra, strict=True):
            f.write(
                json.dumps(
                    {
                        "key": group_key(h),
                        "origin": h.origin,
                        "truth": h.middle,
                        "pred": pr,
                        "ms": ms,
                        "forwards": e["forwards"],
                    }
                )
                + "\n"
            )
    if args.no_score:
        print(f"decoded {len(holes)} holes into {out / 'samples.jsonl'}")
        return
    system = (
        "oracle length"
        if args.oracle_length
        else f"best of {args.candidates}"
        if args.candidates
        else "model"
    )
    systems = {system: score(holes, preds, lat)}
    if not args.oracle_length and not args.candidates:
        systems["empty hole"] = score(holes, [""] * len(holes))
        systems["repeat previous line"] = score(
            holes, [previous_line_guess(h.prefix, max(1, h.middle.count("\n") + 1)) for h in holes]
        )
    results = {
        "checkpoint": str(args.checkpoint),
        "split": args.split,
        "steps": args.steps,
        "sampler": sampler,
        "threads": args.threads,
        "mode": system,
        "holes": len(holes),
        "systems": systems,
        "forwards_mean": statistics.mean(e["forwards"] for e in extra) if extra else 0,
        "latency_ms_median": statistics.median(lat) if lat else 0,
    }
    (out / "eval.json").write_text(json.dumps(results, indent=2))
    (out / "eval.md").write_text(markdown(results))
    print(markdown(results))
    print({k: results[k] for k in ("forwards_mean", "latency_ms_median")})


if __name__ == "__main__":
    main()
