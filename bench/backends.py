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
BASE_STEPS = 8  # automaticSteps' default: what an as-you-type request asks for
HOLES_PER_FILE = 3


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_ms(pid: int) -> float:
    """CPU time a process has used so far (user + system), in ms: the server's own work per request,
    which the machine's load does not stretch the way it stretches wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def keystrokes(hole: BenchHole) -> list[tuple[str, int, int]]:
    """(document text, line, character) after each typed character of the hole's true text."""
    out = []
    for k in range(1, min(TYPED_CHARS, len(hole.truth)) + 1):
        typed = hole.prefix + hole.truth[:k]
        last = typed.rsplit("\n", 1)[-1]
        out.append((typed + hole.suffix, typed.count("\n"), len(last.encode("utf-16-le")) // 2))
    return out


def plan(session: EditorSession, tag: str, holes: list[BenchHole]) -> list[tuple]:
    """Open each hole's document in the window; the typing steps through all of them, in order."""
    steps = []
    for n, hole in enumerate(holes):
        uri = f"file:///bench/backends/{tag}/{n}/{hole.path.name}"
        session.open(uri, hole.prefix + hole.suffix, language_of(hole.path.name))
        steps += [(uri, *k) for k in keystrokes(hole)]
    return steps


async def keystroke(session: EditorSession, step: tuple) -> float:
    """Type one character and ask for an automatic suggestion; the request's wall time in ms."""
    uri, text, line, char = step
    session.change(uri, text)
    t = time.perf_counter()
    await session.inline(uri, line, char, automatic=True)
    return (time.perf_counter() - t) * 1000


async def started(options: list[dict]) -> list[EditorSession]:
    sessions = [EditorSession({**BASE, **o}) for o in options]
    await asyncio.gather(*(s.start() for s in sessions))
    await asyncio.gather(*(s.wait_ready() for s in sessions))
    return sessions


async def shared_daemon(files: list[list[BenchHole]]) -> dict:
    """One window on its own worker against three windows on one daemon, measured interleaved.

    The 2-core machine is shared, so the two configurations take turns keystroke by keystroke
    (one keystroke in the single window, then one in the next shared window, round-robin) and meet
    the same load. The single window types through all three files in turn; shared window j types
    through file j, as a user moving between three editor windows.
    """
    (single,) = await started([{"backend": "local"}])
    shared = await started([{"backend": "daemon"}] * len(files))
    single_steps = plan(single, "single", [h for f in files for h in f])
    shared_steps = [
        plan(w, f"shared{j}", f) for j, (w, f) in enumerate(zip(shared, files, strict=True))
    ]
    one: list[float] = []
    three: list[float] = []
    rounds = max(len(p) for p in shared_steps)
    for r in range(rounds):
        for j, (window, steps) in enumerate(zip(shared, shared_steps, strict=True)):
            if r * len(shared) + j < len(single_steps):
                one.append(await keystroke(single, single_steps[r * len(shared) + j]))
            if r < len(steps):
                three.append(await keystroke(window, steps[r]))
    worker = (await single.worker_status())["pid"]
    status = await shared[0].worker_status()
    daemon = status["pid"]
    result = {
        "single_window": {
            "warm_ms_p50": pct(one, 0.5),
            "n": len(one),
            "worker_rss_mb": rss_mb(worker),
        },
        "three_windows": {
            "warm_ms_p50": pct(three, 0.5),
            "n": len(three),
            "daemon_rss_mb": rss_mb(daemon),
            "clients": len(status.get("clients") or []),
            "daemons": len({(await w.worker_status())["pid"] for w in shared}),
            "prompt_cache_hit_rate": status.get("cache_hits", 0)
            / max(status.get("cache_lookups", 1), 1),
        },
    }
    for w in [single, *shared]:
        await w.stop()
    os.kill(daemon, signal.SIGTERM)  # it would outlive the windows by design (idle exit)
    return result


async def remote_overhead(files: list[list[BenchHole]]) -> dict:
    """LSP request -> HTTP round trip -> answer, minus the stand-in's model time, per request; beside
    it, interleaved, the same for a window on its own worker (wall minus the worker's encode+denoise),
    so that the HTTP hop's cost reads apart from this machine's load."""
    standin = subprocess.Popen(
        [sys.executable, "-m", "tests.backends.vllm_standin"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert standin.stdout is not None
        url = standin.stdout.readline().strip()
        remote, local = await started([{"backend": "vllm", "endpoint": url}, {"backend": "local"}])
        holes = [h for f in files for h in f]
        remote_steps, local_steps = plan(remote, "remote", holes), plan(local, "local", holes)
        pairs: list[tuple[float, float]] = []  # (editor-side wall, stand-in model time)
        standin_own: list[float] = []  # the stand-in's time outside the model, same requests
        local_over: list[float] = []
        seen = 0
        servers = [w.client._server.pid for w in (remote, local)]  # type: ignore[union-attr]
        cpu_before = [cpu_ms(pid) for pid in servers]
        for r_step, l_step in zip(remote_steps, local_steps, strict=True):
            wall = await keystroke(remote, r_step)
            # Read after the clock stopped. A request that never reached the model (no canvas to
            # fill) adds no model time and is left out.
            with urlopen(f"{url}/standin/record") as r:  # noqa: S310 (loopback, our own stand-in)
                record = json.load(r)
            model = record["model_ms"]
            if len(model) > seen:
                pairs.append((wall, model[-1]))
                standin_own.append(record["server_ms"][-1])
            seen = len(model)
            wall = await keystroke(local, l_step)
            last = (await local.worker_status()).get("last") or {}
            local_over.append(wall - last.get("encode_ms", 0.0) - last.get("denoise_ms", 0.0))
        cpu = [
            (cpu_ms(pid) - t) / len(remote_steps)
            for pid, t in zip(servers, cpu_before, strict=True)
        ]
        status = await remote.worker_status()
        for w in (remote, local):
            await w.stop()
        hop = await http_hop(url, holes)
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
        "standin_own_ms_p50": pct(standin_own, 0.5),
        "local_overhead_ms_p50": pct(local_over, 0.5),
        "server_cpu_ms_per_request": cpu[0],
        "local_server_cpu_ms_per_request": cpu[1],
        "http_hop_ms_p50": pct(hop, 0.5),
        "http_hop_ms_p95": pct(hop, 0.95),
        "http_hop_n": len(hop),
        "capabilities": status.get("capabilities"),
    }


async def http_hop(url: str, holes: list[BenchHole]) -> list[float]:
    """The remote backend alone (no LSP, no canvas): VllmBackend.generate's wall time minus the
    stand-in's model time, for each hole's prompt at each keystroke."""
    from diffgem_lsp.backends.vllm import VllmBackend
    from diffgem_lsp.settings import Settings
    from diffgem_protocol import GenerateParams, SamplerSettings

    backend = VllmBackend(Settings(backend="vllm", endpoint=url))
    await backend.start()
    out, seen = [], None
    for hole in holes:
        for k in range(1, min(TYPED_CHARS, len(hole.truth)) + 1):
            params = GenerateParams(
                prefix=hole.prefix + hole.truth[:k],
                suffix=hole.suffix,
                max_tokens=32,
                sampler=SamplerSettings(max_steps=BASE_STEPS),
            )
            t = time.perf_counter()
            await backend.generate(params)
            wall = (time.perf_counter() - t) * 1000
            with urlopen(f"{url}/standin/record") as r:  # noqa: S310 (loopback, our own stand-in)
                model = json.load(r)["model_ms"]
            if seen is not None and len(model) > seen:
                out.append(wall - model[-1])
            seen = len(model)
    await backend.stop()
    return out


def markdown(r: dict) -> str:
    """The results as markdown: each section that `r` holds (a rerun of one section into a fresh
    directory has only that one)."""
    lines = [
        "## Backends (bench/backends.py)",
        "",
        f"Machine: {r['machine']}. Embedded model; typing through {r['holes']} holes, "
        f"{TYPED_CHARS} keystrokes each, one automatic request per keystroke.",
        "",
    ]
    if "single_window" in r and "three_windows" in r:
        one, three = r["single_window"], r["three_windows"]
        lines += [
            f"{one['n']} requests per configuration:",
            "",
            "| | 1 window, own worker | 3 windows, shared daemon | ratio | target |",
            "|---|---|---|---|---|",
            f"| model process RSS (MiB) | {one['worker_rss_mb']:.0f} | {three['daemon_rss_mb']:.0f} "
            f"(one daemon, {three['clients']} clients) | **{r['memory_ratio']:.2f}×** | ≤ 1.2× |",
            f"| warm p50, round-robin typing (ms) | {one['warm_ms_p50']:.0f} | "
            f"{three['warm_ms_p50']:.0f} | **{r['warm_p50_ratio']:.2f}×** | ≤ 1.5× |",
            "",
        ]
    if "remote" in r:
        lines += remote_markdown(r["remote"])
    lines += [
        f"Load average while measuring (1/5/15 min): {', '.join(f'{x:.1f}' for x in r['load_average'])} "
        "on this machine's CPUs — other jobs ran alongside, which is why the configurations are "
        "interleaved rather than run one after the other.",
        "",
    ]
    return "\n".join(lines)


def remote_markdown(remote: dict) -> list[str]:
    own = remote.get("standin_own_ms_p50")
    return [
        "Remote backend (vLLM stand-in on 127.0.0.1, own process), LSP request → HTTP → answer with "
        "the stand-in's model time (tokenise + denoise) subtracted:",
        "",
        f"- overhead p50 **{remote['overhead_ms_p50']:.1f} ms** (p95 {remote['overhead_ms_p95']:.1f} ms; "
        f"target ≤ 5 ms p50) over {remote['n']} requests; wall p50 {remote['wall_ms_p50']:.0f} ms, "
        f"model p50 {remote['model_ms_p50']:.0f} ms.",
        *(
            []
            if own is None
            else [
                f"- of it, the stand-in's own time outside the model (its Python http.server reading the "
                f"request, JSON, validation, detokenising, writing each canvas): p50 {own:.1f} ms — "
                "vLLM's server has a cost of its own in that place."
            ]
        ),
        f"- beside it, a window on its own worker: wall minus the worker's encode + denoise time, p50 "
        f"{remote['local_overhead_ms_p50']:.1f} ms (LSP, canvas, pipe and this machine's load).",
        f"- CPU time of the diffgem-lsp process itself per keystroke (didChange + request): "
        f"{remote.get('server_cpu_ms_per_request', float('nan')):.1f} ms on the remote backend, "
        f"{remote.get('local_server_cpu_ms_per_request', float('nan')):.1f} ms beside it on the local one.",
        f"- the HTTP hop alone (VllmBackend.generate, no LSP, no canvas): p50 **{remote['http_hop_ms_p50']:.1f} ms** "
        f"(p95 {remote['http_hop_ms_p95']:.1f} ms) over {remote['http_hop_n']} requests.",
        "",
    ]


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench"))
    parser.add_argument("--only", choices=["daemon", "remote"], help="rerun one section")
    args = parser.parse_args()
    # Daemons of this run live in a private runtime directory, not the user's.
    os.environ["DIFFGEM_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="diffgem-bench-")
    files = [[h for h in make_holes(f) if h.kind == "single"][:HOLES_PER_FILE] for f in FILES[:3]]
    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "holes": sum(len(f) for f in files),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only and (out / "backends.json").exists():
        results = {**json.loads((out / "backends.json").read_text()), **results}
    if args.only != "remote":
        print(
            "one window on its own worker and three on the shared daemon, interleaved …", flush=True
        )
        results.update(await shared_daemon(files))
    if args.only != "daemon":
        print("remote backend on loopback (and a local window beside it) …", flush=True)
        results["remote"] = await remote_overhead(files)
    results["load_average"] = os.getloadavg()
    if "single_window" in results and "three_windows" in results:
        one, three = results["single_window"], results["three_windows"]
        results["memory_ratio"] = three["daemon_rss_mb"] / one["worker_rss_mb"]
        results["warm_p50_ratio"] = three["warm_ms_p50"] / one["warm_ms_p50"]
    (out / "backends.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "backends.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
