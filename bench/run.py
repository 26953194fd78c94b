"""`make bench`: drive the real server over LSP on a fixed set of holes and write the figures.

Three configurations run side by side in one process, each against its own server: the defaults,
(a) one token committed per forward, and (b) no prompt cache. Results go to bench/results.json and
bench/results.md. Benchmarks are not tests: nothing here asserts, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The editor-like LSP client is an example, not part of the installed server package.
sys.path.insert(0, str(ROOT / "examples"))
import long_context_cache  # noqa: E402  (bench/ is the script's directory)
from editor_client import EditorSession, language_of  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Python files of 1-2k tokens from the standard library, and code of our own in another language.
FILES = [
    STDLIB / "textwrap.py",
    STDLIB / "shlex.py",
    STDLIB / "colorsys.py",
    ROOT / "bench/corpus/ring_buffer.js",
]
BASE = {"debounceMs": 0, "seed": 0}
CONFIGS = {
    "default": {},
    "one_token_per_forward": {"confidenceThreshold": 2.0, "automaticSteps": 32, "invokedSteps": 32},
    "no_prompt_cache": {"promptCacheMb": 0},
}
TYPED_CHARS = 8  # characters typed through each single-line hole for the warm figures


@dataclass
class BenchHole:
    path: Path
    prefix: str
    truth: str  # the text that was removed (rest of the line, or the block's body)
    suffix: str
    kind: str  # "single" | "multi"

    @property
    def cursor(self) -> tuple[int, int]:
        last = self.prefix.rsplit("\n", 1)[-1]
        return self.prefix.count("\n"), len(last.encode("utf-16-le")) // 2


def _content_lines(lines: list[str]) -> list[int]:
    comment = ("#", "//", '"""', "'", '"')
    return [
        i
        for i, line in enumerate(lines)
        if len(line.strip()) >= 12 and not line.strip().startswith(comment) and i > 5
    ]


def make_holes(path: Path, single: int = 5, multi: int = 1) -> list[BenchHole]:
    text = path.read_text()
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    candidates = _content_lines(lines)
    holes = []
    for i in candidates[:: max(1, len(candidates) // single)][:single]:
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        cut = indent + max(1, (len(line) - indent) * 2 // 5)
        start, end = offsets[i] + cut, offsets[i] + len(line)
        holes.append(BenchHole(path, text[:start], text[start:end], text[end:], "single"))
    openers = [i for i in candidates if lines[i].rstrip().endswith((":", "{"))]
    for i in openers[:: max(1, len(openers) // multi)][:multi]:
        body_indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
        j = i + 1
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) >= body_indent
        ):
            j += 1
        j = min(j, i + 6)
        start, end = offsets[i + 1] + body_indent, offsets[j] - 1
        holes.append(BenchHole(path, text[:start], text[start:end], text[end:], "multi"))
    return holes


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run_config(name: str, options: dict, holes: list[BenchHole]) -> dict:
    session = EditorSession(options={**BASE, **options})
    await session.start()
    load_s = await session.wait_ready()
    cold, warm, forwards, tpf, tpf_single, warm_encode = [], [], [], [], [], []
    exact = {"hits": 0, "total": 0}
    for n, hole in enumerate(holes):
        uri = f"file:///bench/{name}/{n}/{hole.path.name}"
        lang = language_of(hole.path.name)
        session.open(uri, hole.prefix + hole.suffix, lang)
        line, char = hole.cursor
        t = time.perf_counter()
        items = await session.inline(uri, line, char)
        cold.append((time.perf_counter() - t) * 1000)
        last = (await session.worker_status()).get("last") or {}
        forwards.append(last.get("forwards", 0))
        tpf.append(last.get("tokens_per_forward", 0.0))
        if hole.kind != "single":
            continue
        tpf_single.append(last.get("tokens_per_forward", 0.0))
        text = items[0].insert_text if items else ""
        exact["total"] += 1
        exact["hits"] += int(text.rstrip() == hole.truth.rstrip())
        # Typing through the line, one character per keystroke, automatic trigger each time.
        for k in range(1, min(TYPED_CHARS, len(hole.truth)) + 1):
            typed = hole.prefix + hole.truth[:k]
            session.change(uri, typed + hole.suffix)
            last_line = typed.rsplit("\n", 1)[-1]
            t = time.perf_counter()
            await session.inline(
                uri, typed.count("\n"), len(last_line.encode("utf-16-le")) // 2, automatic=True
            )
            warm.append((time.perf_counter() - t) * 1000)
            warm_encode.append(
                ((await session.worker_status()).get("last") or {}).get("encode_ms", 0.0)
            )
    status = await session.worker_status()
    supersede = await measure_supersede(session, holes[0])
    await session.stop()
    return {
        "model": status.get("model"),
        "load_s": load_s,
        "cold_ms": {"p50": pct(cold, 0.5), "p95": pct(cold, 0.95), "n": len(cold)},
        "warm_ms": {"p50": pct(warm, 0.5), "p95": pct(warm, 0.95), "n": len(warm)},
        "warm_encode_ms_p50": pct(warm_encode, 0.5),
        "forwards_per_request": statistics.mean(forwards) if forwards else 0,
        "tokens_per_forward": statistics.mean(tpf) if tpf else 0,
        "tokens_per_forward_single_line": statistics.mean(tpf_single) if tpf_single else 0,
        "exact_match_single_line": exact["hits"] / max(exact["total"], 1),
        "exact_match_n": exact["total"],
        "prompt_cache_hit_rate": status.get("cache_hits", 0)
        / max(status.get("cache_lookups", 1), 1),
        "worker_peak_rss_mb": status.get("peak_rss_mb"),
        "supersede": supersede,
    }


async def measure_supersede(session: EditorSession, hole: BenchHole) -> dict:
    """A long automatic request superseded by a keystroke: how soon does the worker go idle?"""
    uri = "file:///bench/supersede.py"
    session.open(uri, hole.prefix + hole.suffix, language_of(hole.path.name))
    session.client.workspace_did_change_configuration(
        __import__("lsprotocol").types.DidChangeConfigurationParams(
            settings={"diffgem": {"automaticSteps": 256, "earlyStop": False, "sampler": "entropy"}}
        )
    )
    line, char = hole.cursor
    first = asyncio.ensure_future(session.inline(uri, line, char, automatic=True))
    while (await session.worker_status()).get("busy") is None:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.2)
    t = time.perf_counter()
    session.change(uri, hole.prefix + hole.truth[:1] + hole.suffix)
    second = asyncio.ensure_future(session.inline(uri, line, char + 1, automatic=True))
    try:
        await first
    except Exception:
        pass
    stop_ms = (time.perf_counter() - t) * 1000
    status = await session.worker_status()
    await second
    last = (await session.worker_status()).get("last") or {}
    step_ms = last.get("denoise_ms", 0) / max(last.get("forwards", 1), 1)
    return {
        "first_request_answered_ms": stop_ms,
        "step_ms": step_ms,
        "worker_busy_after": status.get("busy"),
    }


def markdown(results: dict) -> str:
    d, one, nc = (results["configs"][k] for k in CONFIGS)
    rows = [
        (
            "inline latency cold p50 / p95 (ms)",
            lambda r: f"{r['cold_ms']['p50']:.0f} / {r['cold_ms']['p95']:.0f}",
        ),
        (
            "inline latency warm, typing p50 / p95 (ms)",
            lambda r: f"{r['warm_ms']['p50']:.0f} / {r['warm_ms']['p95']:.0f}",
        ),
        ("decoder forwards per request", lambda r: f"{r['forwards_per_request']:.1f}"),
        (
            "tokens per forward (all / single-line)",
            lambda r: f"{r['tokens_per_forward']:.2f} / {r['tokens_per_forward_single_line']:.2f}",
        ),
        (
            "exact match, single-line holes",
            lambda r: f"{100 * r['exact_match_single_line']:.1f}% (n={r['exact_match_n']})",
        ),
        ("prompt-cache hit rate", lambda r: f"{100 * r['prompt_cache_hit_rate']:.0f}%"),
        ("worker peak RSS (MB)", lambda r: f"{r['worker_peak_rss_mb']:.0f}"),
    ]
    out = [
        "| figure | default | (a) one token per forward | (b) no prompt cache |",
        "|---|---|---|---|",
    ]
    out += [f"| {label} | {fmt(d)} | {fmt(one)} | {fmt(nc)} |" for label, fmt in rows]
    ratios = results["ratios"]
    out += [
        "",
        f"- parallel commit vs one token per forward: warm p50 speed-up **{ratios['parallel_vs_single_warm_p50']:.2f}×**, "
        f"forwards per request {one['forwards_per_request']:.1f} → {d['forwards_per_request']:.1f}",
        f"- prompt cache vs none: warm p50 speed-up **{ratios['cache_vs_none_warm_p50']:.2f}×** end to end; "
        f"prompt encoding {nc['warm_encode_ms_p50']:.1f} → {d['warm_encode_ms_p50']:.1f} ms "
        f"(**{ratios['cache_vs_none_encode_p50']:.1f}×**)",
        f"- superseded request answered {d['supersede']['first_request_answered_ms']:.0f} ms after the keystroke "
        f"(one denoising step ≈ {d['supersede']['step_ms']:.0f} ms)",
        f"- {results['holes']} holes ({results['single_line_holes']} single-line) from {', '.join(results['files'])}; "
        f"{results['machine']}",
    ]
    if "long_context_cache" in results:
        out.append(long_context_cache.markdown(results["long_context_cache"]).rstrip("\n"))
    return "\n".join(out) + "\n"


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench"))
    parser.add_argument(
        "--table-only", action="store_true", help="rewrite results.md from results.json"
    )
    args = parser.parse_args()
    if args.table_only:
        saved = json.loads((Path(args.out) / "results.json").read_text())
        (Path(args.out) / "results.md").write_text(markdown(saved))
        return 0
    holes = [h for f in FILES for h in make_holes(f)]
    results = {
        "configs": {},
        "holes": len(holes),
        "single_line_holes": sum(h.kind == "single" for h in holes),
        "files": [f.name for f in FILES],
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
    }
    for name, options in CONFIGS.items():
        print(f"running {name} …", flush=True)
        results["configs"][name] = await run_config(name, options, holes)
    c = results["configs"]
    results["ratios"] = {
        "parallel_vs_single_warm_p50": c["one_token_per_forward"]["warm_ms"]["p50"]
        / c["default"]["warm_ms"]["p50"],
        "cache_vs_none_warm_p50": c["no_prompt_cache"]["warm_ms"]["p50"]
        / c["default"]["warm_ms"]["p50"],
        "cache_vs_none_encode_p50": c["no_prompt_cache"]["warm_encode_ms_p50"]
        / max(c["default"]["warm_encode_ms_p50"], 1e-6),
    }
    print("running long-context prompt cache …", flush=True)
    results["long_context_cache"] = long_context_cache.run()
    out = Path(args.out)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table)
    print(table)
    # Speed sections: the decoder step against this machine's floor, and typing over LSP
    # (bench/speed.py writes bench/speed.md and bench/speed.json).
    from speed import run_speed

    await run_speed(out)
    print((out / "speed.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
