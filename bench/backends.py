"""`make bench` (backends section): three editor windows on the shared daemon against one window on its own
worker, and the remote (vLLM) backend's overhead on loopback with the model's time taken out.

Real servers over LSP (examples/editor_client.py), the embedded model. The remote side is the loopback
vLLM stand-in (tests/backends/vllm_standin.py) in a process of its own: it reports the time each answer
spent in the model, which is subtracted from the editor-side wall time. Writes bench/backends.json and
bench/backends.md. Measures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "bench"))
from editor_client import EditorSession, language_of  # noqa: E402
from run import FILES, TYPED_CHARS, BenchHole, make_holes, pct  # noqa: E402

BASE = {"debounceMs": 0, "seed": 0}
HOLES_PER_FILE = 3


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def keystrokes(hole: BenchHole) -> list[tuple[str, int, int]]:
    """(document text, line, character) after each typed character of the hole's true text."""
    out = []
    for k in range(1, min(TYPED_CHARS, len(hole.truth)) + 1):
        typed = hole.prefix + hole.truth[:k]
        last = typed.rsplit("\n", 1)[-1]
        out.append((typed + hole.suffix, typed.count("\n"), len(last.encode("utf-16-le")) // 2))
    return out


async def type_round_robin(
    windows: list[EditorSession], files: list[list[BenchHole]], on_answer=None
) -> list[float]:
    """Each window types through its own file's holes; windows take turns keystroke by keystroke
    (a user moving between editor windows), automatic requests after every keystroke."""
    plans = []
    for w, (session, holes) in enumerate(zip(windows, files, strict=True)):
        steps = []
        for n, hole in enumerate(holes):
            uri = f"file:///bench/backends/{w}/{n}/{hole.path.name}"
            session.open(uri, hole.prefix + hole.suffix, language_of(hole.path.name))
            steps += [(uri, *k) for k in keystrokes(hole)]
        plans.append(steps)
    warm: list[float] = []
    for i in range(max(len(p) for p in plans)):
        for session, steps in zip(windows, plans, strict=True):
            if i >= len(steps):
                continue
            uri, text, line, char = steps[i]
            session.change(uri, text)
            t = time.perf_counter()
            await session.inline(uri, line, char, automatic=True)
            warm.append((time.perf_counter() - t) * 1000)
            if on_answer is not None:
                on_answer(warm[-1])
    return warm


async def single_window(files: list[list[BenchHole]]) -> dict:
    """One window on its own worker (backend local), typing through all three files."""
    session = EditorSession({**BASE, "backend": "local"})
    await session.start()
    await session.wait_ready()
    warm = await type_round_robin([session], [[h for f in files for h in f]])
    status = await session.worker_status()
    result = {"warm_ms_p50": pct(warm, 0.5), "n": len(warm), "worker_rss_mb": rss_mb(status["pid"])}
    await session.stop()
    return result


async def three_windows(files: list[list[BenchHole]]) -> dict:
    """Three windows (three servers) on one shared daemon, taking turns."""
    windows = [EditorSession({**BASE, "backend": "daemon"}) for _ in files]
    await asyncio.gather(*(w.start() for w in windows))
    await asyncio.gather(*(w.wait_ready() for w in windows))
    warm = await type_round_robin(windows, files)
    status = await windows[0].worker_status()
    daemon = status["pid"]
    result = {
        "warm_ms_p50": pct(warm, 0.5),
        "n": len(warm),
        "daemon_rss_mb": rss_mb(daemon),
        "clients": len(status.get("clients") or []),
        "daemons": len({(await w.worker_status())["pid"] for w in windows}),
        "prompt_cache_hit_rate": status.get("cache_hits", 0)
        / max(status.get("cache_lookups", 1), 1),
    }
    for w in windows:
        await w.stop()
    os.kill(daemon, signal.SIGTERM)  # it would outlive the windows by design (idle exit)
    return result


async def remote_overhead(files: list[list[BenchHole]]) -> dict:
    """LSP request -> HTTP round trip -> answer, minus the stand-in's model time, per request."""
    standin = subprocess.Popen(
        [sys.executable, "-m", "tests.backends.vllm_standin"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert standin.stdout is not None
        url = standin.stdout.readline().strip()
        session = EditorSession({**BASE, "backend": "vllm", "endpoint": url})
        await session.start()
        await session.wait_ready()
        pairs: list[tuple[float, float]] = []  # (editor-side wall, stand-in model time) per answer
        seen = [0]

        def on_answer(wall_ms: float) -> None:
            # Read after the clock stopped. A request that never reached the model (no canvas to
            # fill) adds no model time and is left out.
            with urlopen(f"{url}/standin/record") as r:  # noqa: S310 (loopback, our own stand-in)
                model = json.load(r)["model_ms"]
            if len(model) > seen[0]:
                pairs.append((wall_ms, model[-1]))
            seen[0] = len(model)

        sent = await type_round_robin([session], [[h for f in files for h in f]], on_answer)
        status = await session.worker_status()
        await session.stop()
    finally:
        standin.terminate()
        standin.wait()
    overhead = [wall - model for wall, model in pairs]
    return {
        "overhead_ms_p50": pct(overhead, 0.5),
        "overhead_ms_p95": pct(overhead, 0.95),
        "wall_ms_p50": pct([w for w, _ in pairs], 0.5),
        "model_ms_p50": pct([m for _, m in pairs], 0.5),
        "n": len(pairs),
        "requests_sent": len(sent),
        "capabilities": status.get("capabilities"),
    }


def markdown(r: dict) -> str:
    one, three, remote = r["single_window"], r["three_windows"], r["remote"]
    return "\n".join(
        [
            "## Backends (bench/backends.py)",
            "",
            f"Machine: {r['machine']}. Embedded model; {one['n']} automatic requests per configuration "
            f"(typing through {r['holes']} holes, {TYPED_CHARS} keystrokes each).",
            "",
            "| | 1 window, own worker | 3 windows, shared daemon | ratio | target |",
            "|---|---|---|---|---|",
            f"| model process RSS (MiB) | {one['worker_rss_mb']:.0f} | {three['daemon_rss_mb']:.0f} "
            f"(one daemon, {three['clients']} clients) | **{r['memory_ratio']:.2f}×** | ≤ 1.2× |",
            f"| warm p50, round-robin typing (ms) | {one['warm_ms_p50']:.0f} | "
            f"{three['warm_ms_p50']:.0f} | **{r['warm_p50_ratio']:.2f}×** | ≤ 1.5× |",
            "",
            "Remote backend (vLLM stand-in on 127.0.0.1, own process), LSP request → HTTP → answer with "
            "the stand-in's model time (tokenise + denoise) subtracted:",
            "",
            f"- overhead p50 **{remote['overhead_ms_p50']:.1f} ms** (p95 {remote['overhead_ms_p95']:.1f} ms; "
            f"target ≤ 5 ms p50) over {remote['n']} requests; wall p50 {remote['wall_ms_p50']:.0f} ms, "
            f"model p50 {remote['model_ms_p50']:.0f} ms.",
            "",
        ]
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench"))
    args = parser.parse_args()
    # Daemons of this run live in a private runtime directory, not the user's.
    os.environ["DIFFGEM_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="diffgem-bench-")
    files = [[h for h in make_holes(f) if h.kind == "single"][:HOLES_PER_FILE] for f in FILES[:3]]
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "holes": sum(len(f) for f in files),
    }
    print("one window on its own worker …", flush=True)
    results["single_window"] = await single_window(files)
    print("three windows on the shared daemon …", flush=True)
    results["three_windows"] = await three_windows(files)
    print("remote backend on loopback …", flush=True)
    results["remote"] = await remote_overhead(files)
    one, three = results["single_window"], results["three_windows"]
    results["memory_ratio"] = three["daemon_rss_mb"] / one["worker_rss_mb"]
    results["warm_p50_ratio"] = three["warm_ms_p50"] / one["warm_ms_p50"]
    out = Path(args.out)
    (out / "backends.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "backends.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
