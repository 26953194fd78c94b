"""Typing benchmark: real files typed back one keystroke at a time over LSP, with the default settings.

Boundary: drives the real server through `examples/editor_client.py` (debounce, prompt cache, worker and
all); `bench/run.py` calls `run_typing()` and writes the figures. Each keystroke is a whole-document
didChange followed by an automatic inline completion request at the new cursor, as VS Code sends them;
the next keystroke waits for the answer, so each figure is one keystroke's own latency.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from editor_client import EditorSession, language_of  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# A ~500-line Python file (the case), a second Python file and code of our own in JavaScript.
TYPED_FILES = [STDLIB / "textwrap.py", STDLIB / "shlex.py", ROOT / "bench/corpus/ring_buffer.js"]


@dataclass(frozen=True)
class TypedLine:
    path: Path
    row: int
    before: str  # the file up to where this line's text starts (its indentation included)
    typed: str  # the line's text, typed one character at a time
    after: str  # the rest of the file from the end of the line (its newline on)


def lines_to_type(path: Path, count: int, chars: int) -> list[TypedLine]:
    """`count` content lines spread evenly through the file, each typed for at most `chars` keystrokes."""
    text = path.read_text()
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    content = [
        i
        for i, line in enumerate(lines)
        if i > 10 and len(line.strip()) >= 12 and not line.strip().startswith(("#", "//", '"'))
    ]
    picked = content[:: max(1, len(content) // count)][:count]
    out = []
    for row in picked:
        line = lines[row]
        indent = len(line) - len(line.lstrip())
        begin, end = starts[row] + indent, starts[row] + len(line)
        out.append(TypedLine(path, row, text[:begin], text[begin:end][:chars], text[end:]))
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def type_lines(
    session: EditorSession,
    lines: list[TypedLine],
    interval_ms: float | None = None,
    warmup: int = 2,
) -> dict[str, list]:
    """Type every line. Per keystroke: latency (ms, None if superseded), ghost shown, forwards, step.

    `interval_ms=None`: the next key waits for the answer (each latency is the keystroke's own).
    Otherwise keys come every `interval_ms` like a typist's, and an answer still out when the next key
    lands is superseded (the server cancels it; the editor would drop it) — the last key of each line
    is always waited for, as when the typist pauses to read the suggestion.
    """
    out: dict[str, list] = {"latency_ms": [], "ghost": [], "forwards": [], "step_ms": []}
    opened: set[Path] = set()
    for line in lines:
        uri = f"file:///typing/{line.path.name}"
        # The line starts blank (cursor after its indentation), the rest of the file around it.
        base = line.before + line.after
        if line.path not in opened:
            session.open(uri, base, language_of(line.path.name))
            opened.add(line.path)
        else:
            session.change(uri, base)
        row = line.before.count("\n")
        column = len(line.before.rsplit("\n", 1)[-1].encode("utf-16-le")) // 2
        for k in range(1, len(line.typed) + 1):
            typed = line.typed[:k]
            t = time.perf_counter()
            session.change(uri, line.before + typed + line.after)
            request = asyncio.ensure_future(
                session.inline(
                    uri, row, column + len(typed.encode("utf-16-le")) // 2, automatic=True
                )
            )
            last_key = k == len(line.typed)
            timeout = None if interval_ms is None or last_key else interval_ms / 1000
            done, _ = await asyncio.wait({request}, timeout=timeout)
            items = []
            latency: float | None = None
            if done:
                latency = (time.perf_counter() - t) * 1000
                try:
                    items = request.result()
                except Exception:  # a superseded request may be answered with an error
                    items = []
            else:
                request.add_done_callback(lambda f: f.cancelled() or f.exception())
            last = (await session.worker_status()).get("last") or {}
            if warmup > 0:  # the first keystrokes of a run load caches; not a typing figure
                warmup -= 1
                continue
            out["latency_ms"].append(latency)
            out["ghost"].append(bool(items and items[0].insert_text.strip()))
            if latency is not None:
                forwards = int(last.get("forwards", 0))
                out["forwards"].append(forwards)
                if forwards:
                    out["step_ms"].append(float(last.get("denoise_ms", 0.0)) / forwards)
            if interval_ms is not None and not last_key:
                # The next key lands `interval_ms` after this one, whatever happened meanwhile.
                await asyncio.sleep(max(0.0, interval_ms / 1000 - (time.perf_counter() - t)))
    return out


async def run_typing(
    options: dict,
    lines_per_file: int = 3,
    chars: int = 10,
    env: dict[str, str] | None = None,
    interval_ms: float | None = None,
) -> dict:
    """One server with `options` (defaults: {}), every file's lines typed back; summary figures."""
    session = await _started(options, env or {})
    try:
        lines = [t for f in TYPED_FILES for t in lines_to_type(f, lines_per_file, chars)]
        raw = await type_lines(session, lines, interval_ms)
    finally:
        await session.stop()
    answered = [x for x in raw["latency_ms"] if x is not None]
    lat, ghost = (
        answered,
        [g for g, x in zip(raw["ghost"], raw["latency_ms"], strict=True) if x is not None],
    )
    return {
        "keystrokes": len(raw["latency_ms"]),
        "interval_ms": interval_ms,
        "superseded_rate": 1 - len(answered) / max(len(raw["latency_ms"]), 1),
        "latency_ms": {"p50": _pct(lat, 0.5), "p95": _pct(lat, 0.95)},
        "empty_result_rate": 1 - sum(ghost) / max(len(ghost), 1),
        "forwards_per_request": statistics.mean(raw["forwards"]) if raw["forwards"] else 0.0,
        "step_ms_p50": _pct(raw["step_ms"], 0.5),
        "files": [f.name for f in TYPED_FILES],
        "options": options,
        "env": env or {},
    }


async def _started(options: dict, env: dict[str, str]) -> EditorSession:
    """A server with `options`, its worker started under `env` (restored afterwards), ready."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        session = EditorSession(options={"seed": 0, **options})
        await session.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    await session.wait_ready()
    return session


async def typing_side_by_side(
    configs: dict[str, tuple[dict, dict[str, str]]], lines_per_file: int = 2, chars: int = 8
) -> dict:
    """Every config's server typing the same keystrokes in turn: key k goes to server A, its answer
    awaited, then to B, ... So a burst of load from elsewhere hits every config alike, and the ratios
    between configs hold on a busy machine where figures from separate runs do not."""
    sessions = {name: await _started(options, env) for name, (options, env) in configs.items()}
    raw: dict[str, dict[str, list]] = {name: _empty_record() for name in configs}
    before = os.getloadavg()
    try:
        lines = [t for f in TYPED_FILES for t in lines_to_type(f, lines_per_file, chars)]
        opened: set[Path] = set()
        for line in lines:
            uri = f"file:///typing/{line.path.name}"
            base = line.before + line.after
            row = line.before.count("\n")
            column = len(line.before.rsplit("\n", 1)[-1].encode("utf-16-le")) // 2
            for k in range(1, len(line.typed) + 1):
                typed = line.typed[:k]
                for name, session in sessions.items():
                    if k == 1:
                        # The line's start goes to each server right before its own first key, as
                        # an editor sends Enter and then the key: every config meets the new place
                        # cold alike (sent to all at once, every config but the first had its
                        # prefill, diffgem_lsp/prefill.py, warm the place while it waited).
                        if line.path not in opened:
                            session.open(uri, base, language_of(line.path.name))
                        else:
                            session.change(uri, base)
                    prior = await session.worker_status()
                    t = time.perf_counter()
                    session.change(uri, line.before + typed + line.after)
                    character = column + len(typed.encode("utf-16-le")) // 2
                    items = await session.inline(uri, row, character, automatic=True)
                    latency = (time.perf_counter() - t) * 1000
                    status = await session.worker_status()
                    if k <= 2 and line is lines[0]:
                        continue  # the first keystrokes load caches: not a typing figure
                    _record(raw[name], latency, items, prior, status)
            opened.add(line.path)
    finally:
        for session in sessions.values():
            await session.stop()
    load = (
        f"{' '.join(f'{x:.2f}' for x in before)} → {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return {
        name: {
            "keystrokes": len(r["latency_ms"]),
            "latency_ms": {"p50": _pct(r["latency_ms"], 0.5), "p95": _pct(r["latency_ms"], 0.95)},
            "empty_result_rate": 1 - sum(r["ghost"]) / max(len(r["ghost"]), 1),
            "forwards_per_request": statistics.mean(r["forwards"]) if r["forwards"] else 0.0,
            "step_ms_p50": _pct(r["step_ms"], 0.5),
            "breakdown": _breakdown(r["requests"]),
            "options": configs[name][0],
            "env": configs[name][1],
            "load": load,
        }
        for name, r in raw.items()
    }


# A request that encoded more prompt tokens than this missed the prompt cache: the first key at a new
# place (a keystroke adds 1-3 tokens; a prefill or the previous key left the rest cached).
COLD_TOKENS = 16


def _empty_record() -> dict[str, list]:
    return {"latency_ms": [], "ghost": [], "forwards": [], "step_ms": [], "requests": []}


def _record(out: dict[str, list], latency: float, items, prior: dict, status: dict) -> None:
    """One keystroke's figures, and where its time went (worker status before and after it)."""
    last = status.get("last") or {}
    timing = status.get("last_timing") or {}
    ran = status["totals"]["generations"] > prior["totals"]["generations"]
    out["latency_ms"].append(latency)
    out["ghost"].append(bool(items and items[0].insert_text.strip()))
    forwards = int(last.get("forwards", 0)) if ran else 0
    out["forwards"].append(forwards)
    if forwards:
        out["step_ms"].append(float(last.get("denoise_ms", 0.0)) / forwards)
    worker_ms = timing.get("queued_ms", 0.0) + timing.get("run_ms", 0.0) if ran else 0.0
    out["requests"].append(
        {
            "ms": round(latency, 1),
            "model": ran,  # False: answered without the model (typing-through, suggest cache)
            "encoded_tokens": last.get("encoded_tokens", 0) if ran else 0,
            "encode_ms": round(last.get("encode_ms", 0.0), 1) if ran else 0.0,
            "forwards": forwards,
            "denoise_ms": round(last.get("denoise_ms", 0.0), 1) if ran else 0.0,
            "queued_ms": round(timing.get("queued_ms", 0.0), 1) if ran else 0.0,
            "behind": timing.get("behind") if ran else None,
            # The rest: the server (debounce wait, canvas, post-processing) and the two pipes.
            "server_ms": round(latency - worker_ms, 1),
        }
    )


def _breakdown(requests: list[dict]) -> dict:
    """Keystrokes by kind (cold: a prompt-cache miss; warm: typing on; no model: the cache answered),
    each kind's share, latency p50 and where its time went (medians)."""
    kinds = {
        "cold": [r for r in requests if r["model"] and r["encoded_tokens"] > COLD_TOKENS],
        "warm": [r for r in requests if r["model"] and r["encoded_tokens"] <= COLD_TOKENS],
        "no model": [r for r in requests if not r["model"]],
    }
    out: dict[str, Any] = {}
    for kind, rs in kinds.items():
        if not rs:
            continue
        out[kind] = {
            "share": len(rs) / max(len(requests), 1),
            "p50_ms": _pct([r["ms"] for r in rs], 0.5),
            "max_ms": max(r["ms"] for r in rs),
            **{
                f"{key}_p50": _pct([float(r[key]) for r in rs], 0.5)
                for key in (
                    "encoded_tokens",
                    "encode_ms",
                    "forwards",
                    "denoise_ms",
                    "queued_ms",
                    "server_ms",
                )
            },
            "waited_behind": sum(1 for r in rs if r["behind"]),
        }
    slowest = sorted(requests, key=lambda r: -r["ms"])[: max(1, len(requests) // 20)]
    out["slowest 5%"] = slowest
    return out


async def _idle(session: EditorSession, prefills: int) -> dict:
    """Wait until the worker has finished `prefills` warm-ups and is idle; its status."""
    for _ in range(600):
        status = await session.worker_status()
        if status["totals"].get("prefills", 0) >= prefills and status.get("busy") is None:
            return status
        await asyncio.sleep(0.05)
    raise TimeoutError(f"worker still busy or prefill #{prefills} missing: {status}")


async def first_ghost_after_open(options: dict, pause_s: float = 1.0) -> dict:
    """First keystroke -> ghost in each freshly opened file (worker warm), `pause_s` after didOpen.

    Two cursors per file: "append", Enter at the end of the last line of code (where the didOpen
    prefill warms the cache, diffgem_lsp/prefill.py), and "mid-file", the first character of the
    first line `lines_to_type` picks (the prefill guessed elsewhere: no reuse expected).
    """
    session = EditorSession(options={"seed": 0, **options})
    await session.start()
    out: dict = {"append": [], "mid-file": [], "reused": {"append": [], "mid-file": []}}
    out["encode_ms"] = {"append": [], "mid-file": []}  # the request's own prompt encoding
    try:
        await session.wait_ready()
        prefill = options.get("prefill", True)
        warm = "def warm_up(x):\n    return x\n"  # first-call costs are not a cold-open figure
        session.open("file:///cold/warm_up.py", warm, "python")
        await session.inline("file:///cold/warm_up.py", 1, 4)
        await asyncio.sleep(pause_s)  # its didOpen warm-up was cancelled by the request or has run
        done = (await _idle(session, 0))["totals"].get("prefills", 0)
        for path in TYPED_FILES:
            text = path.read_text()
            end = len(text.rstrip())
            line = lines_to_type(path, 1, 1)[0]
            cases = {
                "append": (text, text[:end] + "\n" + text[end:], text[: end + 1]),
                "mid-file": (
                    line.before + line.after,
                    line.before + line.typed[:1] + line.after,
                    line.before + line.typed[:1],
                ),
            }
            for case, (opened, typed, upto) in cases.items():
                uri = f"file:///cold/{case}/{path.name}"
                session.open(uri, opened, language_of(path.name))
                await asyncio.sleep(pause_s)  # the user looks before typing
                done = (await _idle(session, done + (1 if prefill else 0)))["totals"]["prefills"]
                t = time.perf_counter()
                session.change(uri, typed)
                row, column = (
                    upto.count("\n"),
                    len(upto.rsplit("\n", 1)[-1].encode("utf-16-le")) // 2,
                )
                await session.inline(uri, row, column, automatic=True)
                out[case].append((time.perf_counter() - t) * 1000)
                last = (await session.worker_status()).get("last") or {}
                total = last.get("reused_tokens", 0) + last.get("encoded_tokens", 0)
                out["reused"][case].append(f"{last.get('reused_tokens', 0)}/{total}")
                out["encode_ms"][case].append(last.get("encode_ms", 0.0))
                out.setdefault("forwards_and_denoise_ms", []).append(
                    (last.get("forwards"), round(last.get("denoise_ms", 0)))
                )
                done = (await _idle(session, 0))["totals"].get("prefills", 0)
    finally:
        await session.stop()
    return {
        "append_ms_p50": _pct(out["append"], 0.5),
        "mid_file_ms_p50": _pct(out["mid-file"], 0.5),
        "ms": {k: out[k] for k in ("append", "mid-file")},
        "reused_prompt_tokens": out["reused"],
        "encode_ms": out["encode_ms"],
        "forwards_and_denoise_ms": out["forwards_and_denoise_ms"],
        "files": [f.name for f in TYPED_FILES],
        "options": options,
    }


async def cold_open() -> dict:
    """`first_ghost_after_open` with the prefill on (default) and off, one server each."""
    before = os.getloadavg()[0]
    return {
        "prefill": await first_ghost_after_open({}),
        "no prefill": await first_ghost_after_open({"prefill": False}),
        "load": f"{before:.2f} → {os.getloadavg()[0]:.2f}",
    }


def cold_open_markdown(r: dict) -> str:
    on, off = r["prefill"], r["no prefill"]
    return (
        f"- First ghost after didOpen (keystroke → answer p50 over {', '.join(on['files'])}, worker "
        f"warm, 1 s after opening): appending below the last line **{on['append_ms_p50']:.0f} ms "
        f"with prefill vs {off['append_ms_p50']:.0f} ms without** (prompt tokens reused "
        f"{', '.join(on['reused_prompt_tokens']['append'])} vs "
        f"{', '.join(off['reused_prompt_tokens']['append'])}); typing mid-file, where the didOpen "
        f"prefill did not guess the cursor, {on['mid_file_ms_p50']:.0f} vs {off['mid_file_ms_p50']:.0f} ms "
        f"(load average {r.get('load', 'n/a')}).\n"
    )


if __name__ == "__main__":  # the cold-open figures alone: python bench/typing_replay.py
    import json

    figures = asyncio.run(cold_open())
    print(json.dumps(figures, indent=2))
    print(cold_open_markdown(figures))
