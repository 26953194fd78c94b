"""`make bench`, speed sections: the decoder step against this machine's floor, and typing over LSP.

Boundary: runs `floor.measure` (engine in process) and `typing_replay.run_typing` (the real server) and
writes bench/speed.json and bench/speed.md; `bench/run.py` calls `run_speed()`, and `python
bench/speed.py` runs these sections alone. Every figure sits beside the load average it was taken under.
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import floor  # noqa: E402
import steps  # noqa: E402
import typing_replay  # noqa: E402

# Typing runs, one server each, in this order. The defaults first; then one knob changed at a time.
TYPING_CONFIGS: dict[str, tuple[dict, dict[str, str], float | None]] = {
    "default": ({}, {}, None),
    "default, a key every 150 ms": ({}, {}, 150.0),
    "whole-file tokenising (DIFFGEM_INCREMENTAL_TOKENS=0)": (
        {},
        {"DIFFGEM_INCREMENTAL_TOKENS": "0"},
        None,
    ),
    "1 intra-op thread (DIFFGEM_THREADS=1)": ({}, {"DIFFGEM_THREADS": "1"}, None),
    "spinning OpenMP waits (OMP_WAIT_POLICY=ACTIVE)": ({}, {"OMP_WAIT_POLICY": "ACTIVE"}, None),
    "fixed 60 ms debounce (the old default)": (
        {"adaptiveDebounce": False, "debounceMs": 60},
        {},
        None,
    ),
    "fp32 matmuls (DIFFGEM_LEAN_MATMUL=fp32)": ({}, {"DIFFGEM_LEAN_MATMUL": "fp32"}, None),
    "int8 matmuls (DIFFGEM_LEAN_MATMUL=int8)": ({}, {"DIFFGEM_LEAN_MATMUL": "int8"}, None),
    "HF forward (DIFFGEM_LEAN_DECODER=0)": ({}, {"DIFFGEM_LEAN_DECODER": "0"}, None),
}


# Typed side by side (typing_replay.typing_side_by_side): the defaults against one knob of the
# previous defaults each, on the same keystrokes in turn.
SIDE_BY_SIDE: dict[str, tuple[dict, dict[str, str]]] = {
    "default": ({}, {}),
    "encode before the first step (DIFFGEM_FOLD_ENCODE=0)": ({}, {"DIFFGEM_FOLD_ENCODE": "0"}),
    "whole-file tokenising (DIFFGEM_INCREMENTAL_TOKENS=0)": (
        {},
        {"DIFFGEM_INCREMENTAL_TOKENS": "0"},
    ),
    "fixed 60 ms debounce": ({"adaptiveDebounce": False, "debounceMs": 60}, {}),
    "commit threshold 0.9": ({"confidenceThreshold": 0.9}, {}),
    # The default is bf16 where the CPU multiplies bf16 natively (fast_decoder.matmul_precision).
    "fp32 matmuls (DIFFGEM_LEAN_MATMUL=fp32)": ({}, {"DIFFGEM_LEAN_MATMUL": "fp32"}),
}


async def run_speed(
    out_dir: Path = BENCH, lines_per_file: int = 2, chars: int = 8, only: str = ""
) -> dict:
    """Every section, or with `only="typing"` the typing rows alone (the other sections are kept from
    the last bench/speed.json, each beside the load average it was taken under)."""
    results: dict = {"machine": f"{platform.processor() or platform.machine()}"}
    if only:
        results = json.loads((out_dir / "speed.json").read_text())
        # The kept floor rows were measured at 1 and 2 threads: compare steps at today's worker count.
        results["floor"]["worker_threads"] = floor.default_threads()
    if only in ("", "floor"):
        print("floor: matmuls, HF vs lean step, profiles …", flush=True)
        results["floor"] = floor.measure(out_dir)
    if only == "":
        print("steps: commit threshold vs exact match …", flush=True)
        results["steps"] = steps.measure_steps()
    if only in ("", "fold"):
        print("fold: a keystroke's request with and without the folded encode …", flush=True)
        results["fold"] = fold_ab()
    if only in ("", "side_by_side"):
        print("typing side by side …", flush=True)
        results["side_by_side"] = await typing_replay.typing_side_by_side(SIDE_BY_SIDE)
    if only not in ("", "typing"):
        return _write(results, out_dir)
    results["typing"] = {}
    for name, (options, env, interval_ms) in TYPING_CONFIGS.items():
        print(f"typing: {name} …", flush=True)
        before = floor.load_average()
        row = await typing_replay.run_typing(options, lines_per_file, chars, env, interval_ms)
        row["load"] = f"{before} → {floor.load_average()}"
        results["typing"][name] = row
    if only == "":
        print("typing: first ghost after didOpen, prefill on / off …", flush=True)
        results["cold_open"] = await typing_replay.cold_open()
    return _write(results, out_dir)


def _write(results: dict, out_dir: Path) -> dict:
    # The worker's step is wall time at the worker's thread count: compare it with that floor.
    threads = str(results["floor"]["worker_threads"])
    floor_ms = results["floor"]["threads"][threads]["floor_ms_wall"]
    for row in results.get("typing", {}).values():
        row["step_floor_ratio"] = row["step_ms_p50"] / floor_ms if floor_ms else None
    (out_dir / "speed.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out_dir / "speed.md").write_text(markdown(results))
    return results


def markdown(r: dict) -> str:
    out = [
        "# Speed: decoder step vs this machine's floor, and typing over LSP",
        "",
        "## Decoder step vs floor (engine in process, ~430-token cached prompt, 32-token canvas)",
        "",
        floor.markdown(r["floor"]),
        "## Forwards per request vs exact match (engine in process, 1 thread)",
        "",
        steps.markdown(r["steps"]),
        "## Typing real files back, one keystroke at a time (automatic inline request each)",
        "",
        "| config | keystrokes | keystroke → answer p50 / p95 (ms) | superseded | forwards / request "
        "| step p50 (ms) | step / floor | empty answers | load average |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in r["typing"].items():
        ratio = f"{t['step_floor_ratio']:.1f}×" if t.get("step_floor_ratio") else "n/a"
        out.append(
            f"| {name} | {t['keystrokes']} | {t['latency_ms']['p50']:.0f} / {t['latency_ms']['p95']:.0f} "
            f"| {100 * t['superseded_rate']:.0f}% | {t['forwards_per_request']:.2f} | {t['step_ms_p50']:.1f} | {ratio} "
            f"| {100 * t['empty_result_rate']:.0f}% | {t['load']} |"
        )
    if r.get("side_by_side"):
        out += [
            "",
            "Side by side: every config's server typed the same keystrokes in turn (key k to each, "
            "its answer awaited), so load from elsewhere hits all alike; the ratios hold on a busy box. "
            "Each line's start reaches a server right before its own first key there (as an editor "
            "sends Enter, then the key), so every config meets each new place cold.",
            "",
            "| config | keystrokes | keystroke → answer p50 / p95 (ms) | vs default (p50) "
            "| forwards / request | step p50 (ms) | empty answers | load average |",
            "|---|---|---|---|---|---|---|---|",
        ]
        base = r["side_by_side"]["default"]["latency_ms"]["p50"]
        for name, t in r["side_by_side"].items():
            out.append(
                f"| {name} | {t['keystrokes']} | {t['latency_ms']['p50']:.0f} / "
                f"{t['latency_ms']['p95']:.0f} | {t['latency_ms']['p50'] / base:.2f}× "
                f"| {t['forwards_per_request']:.2f} | {t['step_ms_p50']:.1f} "
                f"| {100 * t['empty_result_rate']:.0f}% | {t['load']} |"
            )
        out += ["", *breakdown_markdown(r["side_by_side"])]
    files = ", ".join(next(iter(r["typing"].values()))["files"]) if r["typing"] else ""
    out += [
        "",
        f"Files typed: {files}; {r['machine']}. Step / floor: the worker's denoise time per forward "
        "over the wall-clock floor at the worker's thread count (FLOPs ÷ the best matmul throughput "
        "measured above at that count).",
    ]
    if "fold" in r:
        out += ["", fold_markdown(r["fold"])]
    if "cold_open" in r:
        out += ["", typing_replay.cold_open_markdown(r["cold_open"]).rstrip("\n")]
    return "\n".join(out) + "\n"


def fold_ab(chars: int = 6) -> dict:
    """A keystroke's request in process, folded encode (model/fold.py) vs encode-then-step, paired:
    each keystroke's prompt is warmed to the previous key's (as typing leaves the cache), then both
    ways run back to back, alternating which goes first; how many gave the same fill is counted."""
    import os
    import statistics
    import sysconfig

    from diffgem_model.engine import GenerateParams

    sys.path.insert(0, str(BENCH.parent))  # as the other in-process evals import it
    from bench.eval_common import load_engine

    engine, sampler = load_engine(floor.default_threads(), automatic=True)
    text = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
    marks = ["def fill(", "def dedent(", "def indent(", "class TextWrapper", "def shorten("]
    marks += ["def wrap(", "def _split(", "        if ", "return "]
    typed = "value = self.width"
    before = os.getloadavg()
    ms: dict[bool, list[float]] = {True: [], False: []}
    same = 0
    for mark in marks:
        cut = text.index(mark) + len(mark)
        for k in range(chars):

            def params(n: int, cut: int = cut) -> GenerateParams:
                prefix = text[:cut] + typed[:n]
                return GenerateParams(prefix=prefix, suffix=text[cut:], sampler=sampler)

            outs = {}
            for fold in (True, False) if k % 2 else (False, True):
                engine.fold = fold
                engine.prefill(params(max(0, k - 1)))
                t0 = time.perf_counter()
                result = engine.generate(params(k))
                ms[fold].append((time.perf_counter() - t0) * 1000)
                outs[fold] = (result.text, result.forwards)
            same += outs[True] == outs[False]
    engine.fold = True
    fold_ms, plain_ms = statistics.median(ms[True]), statistics.median(ms[False])
    return {
        "requests": len(ms[True]),
        "same_fills": same,
        "fold_ms_p50": fold_ms,
        "encode_first_ms_p50": plain_ms,
        "ratio": fold_ms / plain_ms,
        "load": f"{' '.join(f'{x:.2f}' for x in before)} → "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    }


def fold_markdown(f: dict) -> str:
    return (
        f"- Folded encode (model/fold.py), a keystroke's request in process, paired over "
        f"{f['requests']} keystrokes typed into textwrap.py: **{f['fold_ms_p50']:.1f} ms folded vs "
        f"{f['encode_first_ms_p50']:.1f} ms encoding first** (median, {f['ratio']:.2f}×), same fill "
        f"and forwards in {f['same_fills']}/{f['requests']} (load average {f['load']}; "
        "`python bench/speed.py --only fold`)."
    )


def breakdown_markdown(side: dict) -> list[str]:
    """Where each config's keystrokes went (typing_replay._breakdown): a prompt-cache miss (the first
    key at a new place), typing on, or answered without the model; and the default's slowest 5%."""
    out = [
        "Per keystroke, by kind (side by side above; medians): *cold* encoded more than "
        f"{typing_replay.COLD_TOKENS} prompt tokens (a prompt-cache miss: the first key at a new "
        "place), *warm* typed on, *no model* was answered from the suggestion cache. *Server*: the "
        "keystroke's time outside the worker (debounce wait, canvas, pipes).",
        "",
        "| config | kind | share | p50 / max (ms) | tokens encoded | encode (ms) | forwards "
        "| denoise (ms) | queued in worker (ms) | server (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in side.items():
        for kind, b in t.get("breakdown", {}).items():
            if kind == "slowest 5%":
                continue
            out.append(
                f"| {name} | {kind} | {100 * b['share']:.0f}% | {b['p50_ms']:.0f} / {b['max_ms']:.0f} "
                f"| {b['encoded_tokens_p50']:.0f} | {b['encode_ms_p50']:.1f} | {b['forwards_p50']:.0f} "
                f"| {b['denoise_ms_p50']:.0f} | {b['queued_ms_p50']:.1f} | {b['server_ms_p50']:.1f} |"
            )
    default = side.get("default", {})
    cold = default.get("breakdown", {}).get("cold")
    if cold:
        out += [
            "",
            f"The default's tail: {100 * cold['share']:.0f}% of its keystrokes missed the prompt "
            f"cache (cold, p50 {cold['p50_ms']:.0f} ms, {cold['encode_ms_p50']:.0f} ms of it encoding "
            f"{cold['encoded_tokens_p50']:.0f} prompt tokens) and its p95 "
            f"({default['latency_ms']['p95']:.0f} ms) falls among them. The `fim` layout puts the "
            "suffix first (model/layouts.py), so a new place shares no prefix with a cached prompt: "
            "the whole prompt is encoded, matmul-bound on one core.",
        ]
    slowest = default.get("breakdown", {}).get("slowest 5%", [])
    if slowest:
        out += [
            "",
            "The default's slowest 5%: "
            + "; ".join(
                f"{s['ms']:.0f} ms ({s['encoded_tokens']} tokens encoded in {s['encode_ms']:.0f} ms, "
                f"{s['forwards']} forwards in {s['denoise_ms']:.0f} ms, queued {s['queued_ms']:.0f} ms"
                f"{' behind a ' + s['behind'] if s['behind'] else ''}, server {s['server_ms']:.0f} ms)"
                for s in slowest
            )
            + ".",
        ]
    return out


if __name__ == "__main__":
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    result = asyncio.run(run_speed(only=only))
    print((BENCH / "speed.md").read_text())
