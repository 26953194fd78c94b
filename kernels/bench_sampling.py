"""GPU benchmark of the fused sampling step: Triton kernel vs torch reference vs the engine's torch path.
Standalone (torch + triton only); prints a markdown table, writes JSON to --out; exits 0 without CUDA.

Run from the repo root:  python kernels/bench_sampling.py --out bench/kernels_sampling.json
Timing: median of CUDA-event times, L2 flushed before each repetition (as triton.testing.do_bench
does); bandwidth counts one read of the logits, the minimum any implementation must move.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

try:  # installed package, else the repo checkout this file lives in
    from diffgem_kernels import sampling as S
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from kernels import sampling as S

TEMPERATURE = 0.6
# (canvas, vocab, dtype, softcap): the real model's vocab and canvas, and the embedded model's.
CASES = [
    (256, 262_144, torch.bfloat16, None),
    (256, 262_144, torch.float32, None),
    (256, 262_144, torch.bfloat16, 30.0),
    (32, 8_192, torch.bfloat16, None),
    (32, 8_192, torch.float32, None),
]
SWEEP = [(1024, 4), (2048, 8), (4096, 8), (4096, 16)]  # (BLOCK, num_warps), on the first case
# --dry-run: tiny cases on CPU through Triton's interpreter, to check the script without a GPU.
DRY_CASES = [(3, 1000, torch.bfloat16, None), (2, 4099, torch.float32, 30.0)]
DEVICE = "cuda"
_FLUSH: torch.Tensor | None = None


def bench_ms(fn, target_s: float = 0.15, max_reps: int = 50) -> float:
    """Median milliseconds of fn() over repetitions, each after an L2 flush."""
    global _FLUSH
    if DEVICE == "cpu":  # --dry-run: exercise the script's paths, not a measurement
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    if _FLUSH is None:
        _FLUSH = torch.empty(256 * 1024 * 1024, dtype=torch.int8, device="cuda")
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = max(time.perf_counter() - t0, 1e-6)
    reps = int(max(5, min(max_reps, target_s / once)))
    times = []
    for _ in range(reps):
        _FLUSH.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def engine_torch_path(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, ...]:
    """What model/sampler.py does per step today on any device (several passes over [C, V])."""
    processed = logits.float() / temperature
    entropy = torch.distributions.Categorical(logits=processed).entropy()
    argmax = processed.argmax(-1)
    probs = torch.softmax(processed, dim=-1, dtype=torch.float32)
    sampled = torch.multinomial(probs, num_samples=1).squeeze(-1)
    confidence = probs.gather(-1, argmax[:, None]).squeeze(-1)
    return sampled, argmax, confidence, entropy


def compare(a: S.SamplingStats, b: S.SamplingStats) -> dict:
    rows = a.argmax.numel()
    res = {
        "argmax_mismatch": int((a.argmax != b.argmax).sum()),
        "sampled_mismatch": int((a.sampled != b.sampled).sum()),
        "entropy_max_abs": float((a.entropy - b.entropy).abs().max()),
        "confidence_max_abs": float((a.confidence - b.confidence).abs().max()),
        "logsumexp_max_abs": float((a.logsumexp - b.logsumexp).abs().max()),
    }
    # Sample ids may differ only at Gumbel near-ties (GPU fast exp/log differ from torch by ulps).
    res["ok"] = (
        res["argmax_mismatch"] == 0
        and res["sampled_mismatch"] <= max(1, rows // 100)
        and res["entropy_max_abs"] <= 2e-3
        and res["confidence_max_abs"] <= 1e-4
        and res["logsumexp_max_abs"] <= 2e-3
    )
    return res


def run_case(rows, vocab, dtype, softcap, deadline, sweep) -> dict:
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    logits = (torch.randn(rows, vocab, device=DEVICE, generator=gen) * 4).to(dtype)  # [C, V]
    gbytes = logits.numel() * logits.element_size() / 1e9
    case = {
        "canvas": rows,
        "vocab": vocab,
        "dtype": str(dtype).removeprefix("torch."),
        "softcap": softcap,
        "temperature": TEMPERATURE,
        "timings": [],
    }

    def kernel(**kw):
        return lambda: S.fused_sampling_step(logits, TEMPERATURE, softcap, 1234, **kw)

    t0 = time.perf_counter()
    got = kernel()()
    _sync()
    case["first_call_s"] = round(time.perf_counter() - t0, 3)  # includes Triton compile
    case["correctness"] = compare(
        got, S.fused_sampling_step_reference(logits, TEMPERATURE, softcap, 1234)
    )
    impls = [
        ("kernel (auto split)", kernel()),
        ("kernel (1 program/row)", kernel(num_splits=1)),
        (
            "torch reference",
            lambda: S.fused_sampling_step_reference(logits, TEMPERATURE, softcap, 1234),
        ),
    ]
    if softcap is None:
        impls.append(("engine torch path", lambda: engine_torch_path(logits, TEMPERATURE)))
    if sweep:
        impls += [(f"kernel BLOCK={b} warps={w}", kernel(block=b, num_warps=w)) for b, w in SWEEP]
    for name, fn in impls:
        if time.perf_counter() > deadline:
            case["timings"].append({"impl": name, "skipped": "time budget"})
            continue
        try:
            ms = bench_ms(fn)
            case["timings"].append(
                {"impl": name, "ms": round(ms, 4), "GB_s": round(gbytes / ms * 1e3, 1)}
            )
        except Exception as exc:  # one failing variant must not lose the others' figures
            case["timings"].append({"impl": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return case


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def markdown(cases: list[dict]) -> str:
    lines = [
        "| canvas × vocab | dtype | softcap | impl | median ms | GB/s | × vs reference | × vs engine path |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for c in cases:
        if "error" in c:
            lines.append(
                f"| {c['canvas']} × {c['vocab']} | {c['dtype']} | | ERROR {c['error']} | | | | |"
            )
            continue
        by = {t["impl"]: t.get("ms") for t in c["timings"]}
        ref, eng = by.get("torch reference"), by.get("engine torch path")
        for t in c["timings"]:
            ms = t.get("ms")
            cell = f"{ms:.3f}" if ms else t.get("skipped") or t.get("error", "")
            sp_ref = f"{ref / ms:.1f}" if ms and ref else ""
            sp_eng = f"{eng / ms:.1f}" if ms and eng else ""
            lines.append(
                f"| {c['canvas']} × {c['vocab']} | {c['dtype']} | {c['softcap'] or '-'} | "
                f"{t['impl']} | {cell} | {t.get('GB_s', '')} | {sp_ref} | {sp_eng} |"
            )
    lines.append("")
    lines.append(
        "correctness (kernel vs reference): "
        + "; ".join(
            f"{c['canvas']}×{c['vocab']} {c['dtype']}: "
            + (
                "ok"
                if c.get("correctness", {}).get("ok")
                else f"FAIL {c.get('correctness') or c.get('error')}"
            )
            for c in cases
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", type=Path, default=Path("bench_sampling.json"), help="JSON results path"
    )
    ap.add_argument(
        "--budget-s", type=float, default=40.0, help="stop timing new variants after this"
    )
    ap.add_argument("--no-sweep", action="store_true", help="skip the BLOCK/num_warps sweep")
    ap.add_argument("--strict", action="store_true", help="exit 1 when kernel != reference")
    ap.add_argument("--dry-run", action="store_true", help="tiny CPU cases via TRITON_INTERPRET=1")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    info: dict[str, object] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }
    cases_to_run = CASES
    if args.dry_run:
        global DEVICE
        os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are first imported
        DEVICE, cases_to_run = "cpu", DRY_CASES
    elif not torch.cuda.is_available():
        print("bench_sampling: no CUDA device here; nothing to benchmark (the kernel needs a GPU).")
        _write(args.out, {**info, "skipped": "no CUDA device"})
        return 0
    if not S.triton_available():
        print("bench_sampling: Triton does not import; only the torch reference exists here.")
        _write(args.out, {**info, "skipped": "triton unavailable"})
        return 0
    import triton

    info["triton"] = triton.__version__
    if DEVICE == "cuda":
        info["device"] = torch.cuda.get_device_name()
        info["sms"] = torch.cuda.get_device_properties(0).multi_processor_count
    else:
        info["device"] = "CPU (Triton interpreter, dry run: timings meaningless)"
    deadline = start + args.budget_s
    cases: list[dict] = []
    for i, (rows, vocab, dtype, softcap) in enumerate(cases_to_run):
        if time.perf_counter() > deadline:
            cases.append(
                {
                    "canvas": rows,
                    "vocab": vocab,
                    "dtype": str(dtype),
                    "softcap": softcap,
                    "error": "skipped: time budget",
                }
            )
            continue
        try:
            cases.append(
                run_case(rows, vocab, dtype, softcap, deadline, i == 0 and not args.no_sweep)
            )
        except Exception as exc:
            cases.append(
                {
                    "canvas": rows,
                    "vocab": vocab,
                    "dtype": str(dtype),
                    "softcap": softcap,
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }
            )
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    all_ok = all(c.get("correctness", {}).get("ok") for c in cases)
    result = {
        **info,
        "all_ok": all_ok,
        "wall_s": round(time.perf_counter() - start, 1),
        "cases": cases,
    }
    _write(args.out, result)
    print(
        f"## fused sampling step — {info['device']} (torch {info['torch']}, triton {info['triton']})\n"
    )
    print(markdown(cases))
    print(f"\nall_ok={all_ok}  wall={result['wall_s']} s  json={args.out}")
    return 1 if args.strict and not all_ok else 0


def _write(path: Path, obj: dict) -> None:
    if path.parent and not path.parent.exists():
        os.makedirs(path.parent, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
