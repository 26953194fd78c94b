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

from lsprotocol import types

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


def utf16_position(text: str) -> tuple[int, int]:
    """The (line, character) just past `text`, in UTF-16 code units (LSP's default encoding)."""
    last = text.rsplit("\n", 1)[-1]
    return text.count("\n"), len(last.encode("utf-16-le")) // 2


def keystrokes(hole: BenchHole) -> list[tuple]:
    """(document text, line, character, edit) after each typed character of the hole's true text;
    `edit` is what an editor with incremental sync sends for it: the character and where it went in."""
    out = []
    for k in range(1, min(TYPED_CHARS, len(hole.truth)) + 1):
        before = hole.prefix + hole.truth[: k - 1]
        typed = before + hole.truth[k - 1]
        edit = (*utf16_position(before), hole.truth[k - 1])
        out.append((typed + hole.suffix, *utf16_position(typed), edit))
    return out


def plan(session: EditorSession, tag: str, holes: list[BenchHole]) -> list[tuple]:
    """Open each hole's document in the window; the typing steps through all of them, in order."""
    steps = []
    for n, hole in enumerate(holes):
        uri = f"file:///bench/backends/{tag}/{n}/{hole.path.name}"
        session.open(uri, hole.prefix + hole.suffix, language_of(hole.path.name))
        steps += [(uri, *k) for k in keystrokes(hole)]
    return steps


def change_incremental(session: EditorSession, uri: str, line: int, char: int, typed: str) -> None:
    """didChange as VS Code, Neovim, Helix and Emacs send it to a server that asks for incremental
    sync: the inserted character and an empty range where it went, not the whole document."""
    session.versions[uri] += 1
    session.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(
                uri=uri, version=session.versions[uri]
            ),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=char),
                        end=types.Position(line=line, character=char),
                    ),
                    text=typed,
                )
            ],
        )
    )


async def keystroke(session: EditorSession, step: tuple) -> float:
    """Type one character and ask for an automatic suggestion; the request's wall time in ms. The
    change goes as the server asked at initialize (its textDocumentSync kind): incremental, or the
    whole document."""
    uri, text, line, char, edit = step
    if getattr(session, "sync_kind", None) == types.TextDocumentSyncKind.Incremental:
        change_incremental(session, uri, *edit)
    else:
        session.change(uri, text)
    t = time.perf_counter()
    await session.inline(uri, line, char, automatic=True)
    return (time.perf_counter() - t) * 1000


def record_sync_kind(session: EditorSession, whole_document: bool = False) -> None:
    """Keep the textDocumentSync kind the server advertises in its initialize result (EditorSession
    drops the result) as `session.sync_kind`; `whole_document` sends whole documents regardless, as
    this bench did before (kept as the comparison row)."""
    initialize = session.client.initialize_async

    async def recording(params: types.InitializeParams) -> types.InitializeResult:
        result = await initialize(params)
        sync = result.capabilities.text_document_sync
        kind = sync.change if isinstance(sync, types.TextDocumentSyncOptions) else sync
        session.sync_kind = types.TextDocumentSyncKind.Full if whole_document else kind  # type: ignore[attr-defined]
        session.advertised_sync_kind = kind  # type: ignore[attr-defined]
        return result

    session.client.initialize_async = recording  # type: ignore[method-assign]


async def started(
    options: list[dict], whole_document: list[bool] | None = None
) -> list[EditorSession]:
    sessions = [EditorSession({**BASE, **o}) for o in options]
    for s, whole in zip(sessions, whole_document or [False] * len(sessions), strict=True):
        record_sync_kind(s, whole)
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
    """LSP request -> HTTP round trip -> answer, minus the stand-in's model time, per request.

    Three windows take turns keystroke by keystroke, so they meet the same load: the remote backend
    with incremental didChange (what editors send: the server asks for it), the remote backend with
    the whole document in every didChange (how this bench measured before), and a window on its own
    worker (wall minus the worker's encode+denoise), so that the HTTP hop's cost reads apart from
    this machine's load. Each remote figure is given raw (wall minus model time) and net of the
    stand-in's own server time too: the stand-in stands for vLLM, whose server overhead is not ours.
    """
    standin = subprocess.Popen(
        [sys.executable, "-m", "tests.backends.vllm_standin"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert standin.stdout is not None
        url = standin.stdout.readline().strip()
        remote, whole, local = await started(
            [{"backend": "vllm", "endpoint": url}] * 2 + [{"backend": "local"}],
            whole_document=[False, True, False],
        )
        holes = [h for f in files for h in f]
        steps = [
            plan(w, tag, holes)
            for w, tag in ((remote, "remote"), (whole, "whole"), (local, "local"))
        ]
        # Per remote window: (editor-side wall, stand-in model time, stand-in own server time).
        rows: dict[str, list[tuple[float, float, float]]] = {"incremental": [], "whole": []}
        local_over: list[float] = []
        seen = 0
        windows = (remote, whole, local)
        servers = [w.client._server.pid for w in windows]  # type: ignore[union-attr]
        cpu_before = [cpu_ms(pid) for pid in servers]
        for n, (r_step, w_step, l_step) in enumerate(zip(*steps, strict=True)):
            turns = [(remote, r_step, "incremental"), (whole, w_step, "whole")]
            # Alternate which remote window goes first: the first meets the local worker's
            # after-work and a stand-in prompt cache the second finds warm.
            for window, step, key in turns if n % 2 == 0 else turns[::-1]:
                wall = await keystroke(window, step)
                # Read after the clock stopped. A request that never reached the model (no canvas
                # to fill) adds no model time and is left out.
                with urlopen(f"{url}/standin/record") as r:  # noqa: S310 (loopback, our own stand-in)
                    record = json.load(r)
                model = record["model_ms"]
                if len(model) > seen:
                    rows[key].append((wall, model[-1], record["server_ms"][-1]))
                seen = len(model)
            wall = await keystroke(local, l_step)
            last = (await local.worker_status()).get("last") or {}
            local_over.append(wall - last.get("encode_ms", 0.0) - last.get("denoise_ms", 0.0))
        cpu = [
            (cpu_ms(pid) - t) / len(steps[0]) for pid, t in zip(servers, cpu_before, strict=True)
        ]
        status = await remote.worker_status()
        sync = getattr(remote, "advertised_sync_kind", None)
        for w in windows:
            await w.stop()
        hop = await http_hop(url, holes)
    finally:
        standin.terminate()
        standin.wait()

    def figures(rows: list[tuple[float, float, float]]) -> dict:
        raw = [wall - model for wall, model, _ in rows]
        net = [wall - model - own for wall, model, own in rows]
        return {
            "overhead_ms_p50": pct(raw, 0.5),
            "overhead_ms_p95": pct(raw, 0.95),
            "net_overhead_ms_p50": pct(net, 0.5),
            "net_overhead_ms_p95": pct(net, 0.95),
            "wall_ms_p50": pct([w for w, _, _ in rows], 0.5),
            "model_ms_p50": pct([m for _, m, _ in rows], 0.5),
            "standin_own_ms_p50": pct([o for _, _, o in rows], 0.5),
            "n": len(rows),
        }

    return {
        # The incremental-sync window is the headline: what an editor's request costs.
        **figures(rows["incremental"]),
        "advertised_sync": None if sync is None else types.TextDocumentSyncKind(sync).name,
        "whole_document": figures(rows["whole"]),
        "local_overhead_ms_p50": pct(local_over, 0.5),
        "server_cpu_ms_per_request": cpu[0],
        "whole_document_server_cpu_ms_per_request": cpu[1],
        "local_server_cpu_ms_per_request": cpu[2],
        "http_hop_ms_p50": pct([raw for raw, _ in hop], 0.5),
        "http_hop_ms_p95": pct([raw for raw, _ in hop], 0.95),
        "net_http_hop_ms_p50": pct([net for _, net in hop], 0.5),
        "http_hop_n": len(hop),
        "capabilities": status.get("capabilities"),
    }


async def http_hop(url: str, holes: list[BenchHole]) -> list[tuple[float, float]]:
    """The remote backend alone (no LSP, no canvas): VllmBackend.generate's wall time minus the
    stand-in's model time (raw), and minus its own server time as well (net), for each hole's
    prompt at each keystroke."""
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
                record = json.load(r)
            model = record["model_ms"]
            if seen is not None and len(model) > seen:
                out.append((wall - model[-1], wall - model[-1] - record["server_ms"][-1]))
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
    whole = remote.get("whole_document") or {}
    sync = remote.get("advertised_sync")
    return [
        "Remote backend (vLLM stand-in on 127.0.0.1, own process), LSP request → HTTP → answer. "
        f"The server advertises {sync or 'its'} text sync; the client sends each keystroke as "
        + (
            "an incremental didChange (the typed character), as VS Code, Neovim, Helix and Emacs do."
            if sync == "Incremental"
            else "the whole document."
        ),
        "",
        "| per request, p50 (p95) in ms | raw: wall − stand-in model time | net: also − stand-in's own server time | stand-in's own server time | wall | model | n |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | **{r['overhead_ms_p50']:.1f}** ({r['overhead_ms_p95']:.1f}) | "
            f"**{r['net_overhead_ms_p50']:.1f}** ({r['net_overhead_ms_p95']:.1f}) | "
            f"{r['standin_own_ms_p50']:.1f} | {r['wall_ms_p50']:.0f} | {r['model_ms_p50']:.0f} | {r['n']} |"
            for label, r in (
                ("incremental didChange (editors)", remote),
                ("whole document in every didChange (this bench before)", whole),
            )
            if "net_overhead_ms_p50" in r
        ),
        "",
        "Target ≤ 5 ms p50 overhead. *Raw* subtracts only the model's time (tokenise + denoise) "
        "reported by the stand-in; *net* subtracts the stand-in's own time outside the model as well "
        "(its Python http.server reading the request, JSON, validation, detokenising, writing each "
        "canvas), which stands for vLLM's own server (uvicorn, FastAPI) and is not diffgem-lsp's cost. "
        "The two windows take turns keystroke by keystroke, with a local window between them.",
        "",
        f"- beside them, a window on its own worker: wall minus the worker's encode + denoise time, p50 "
        f"{remote['local_overhead_ms_p50']:.1f} ms (LSP, canvas, pipe and this machine's load).",
        f"- CPU time of the diffgem-lsp process itself per keystroke (didChange + request): "
        f"{remote.get('server_cpu_ms_per_request', float('nan')):.1f} ms on the remote backend "
        f"(incremental), {remote.get('whole_document_server_cpu_ms_per_request', float('nan')):.1f} ms "
        f"with whole documents, {remote.get('local_server_cpu_ms_per_request', float('nan')):.1f} ms "
        "on the local one.",
        f"- the HTTP hop alone (VllmBackend.generate, no LSP, no canvas): p50 **{remote['http_hop_ms_p50']:.1f} ms** "
        f"raw (p95 {remote['http_hop_ms_p95']:.1f} ms), "
        f"{remote.get('net_http_hop_ms_p50', float('nan')):.1f} ms net, over {remote['http_hop_n']} requests.",
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
