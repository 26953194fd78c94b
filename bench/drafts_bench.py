"""`make bench`, live drafts section: what streamDrafts costs a keystroke, drafts off and on side by side.

Boundary: two real servers over LSP (examples/editor_client.py), identical but for streamDrafts, typed
into alternately, line by line (bench/typing_replay.lines_to_type), so both see the same machine load;
each keystroke is a didChange and an automatic inline request, as VS Code sends them, and the next key
waits for the answer. Figures: keystroke → final ghost text, and with drafts on keystroke → first
drafted canvas and drafts per request. Writes bench/drafts.json and bench/drafts.md; measures, never asserts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "examples"))
import typing_replay  # noqa: E402
from editor_client import EditorSession, language_of  # noqa: E402

MODES = {"drafts off": False, "drafts on": True}
WARMUP_KEYS = 2  # per server: the first keystrokes load caches, not a typing figure


class Typist:
    """One server, one settings variant; records each keystroke's latencies."""

    def __init__(self, stream: bool):
        self.session = EditorSession(options={"seed": 0, "streamDrafts": stream})
        self.first_draft: float | None = None
        self.drafts = 0
        self.rows: list[dict[str, Any]] = []
        self.opened: set[str] = set()

        @self.session.client.feature("diffgem/draft")
        def _draft(_params: Any) -> None:
            if self.first_draft is None:
                self.first_draft = time.perf_counter()
            self.drafts += 1

    async def type_line(self, line: typing_replay.TypedLine) -> None:
        uri = f"file:///typing/{line.path.name}"
        base = line.before + line.after
        if uri in self.opened:
            self.session.change(uri, base)
        else:
            self.session.open(uri, base, language_of(line.path.name))
            self.opened.add(uri)
        row = line.before.count("\n")
        column = len(line.before.rsplit("\n", 1)[-1].encode("utf-16-le")) // 2
        for k in range(1, len(line.typed) + 1):
            typed = line.typed[:k]
            self.first_draft, self.drafts = None, 0
            t = time.perf_counter()
            self.session.change(uri, line.before + typed + line.after)
            items = await self.session.inline(
                uri, row, column + len(typed.encode("utf-16-le")) // 2, automatic=True
            )
            done = time.perf_counter()
            # Drafts are sent before the answer on the same stream: all have arrived by now.
            self.rows.append(
                {
                    "final_ms": (done - t) * 1000,
                    "first_draft_ms": None
                    if self.first_draft is None
                    else (self.first_draft - t) * 1000,
                    "drafts": self.drafts,
                    "ghost": bool(items and str(items[0].insert_text).strip()),
                }
            )


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = rows[WARMUP_KEYS:]
    pct = typing_replay._pct
    final = [r["final_ms"] for r in rows]
    drafted = [r for r in rows if r["first_draft_ms"] is not None]
    return {
        "keystrokes": len(rows),
        "final_ms": {"p50": pct(final, 0.5), "p95": pct(final, 0.95)},
        "first_draft_ms": {
            "p50": pct([r["first_draft_ms"] for r in drafted], 0.5),
            "p95": pct([r["first_draft_ms"] for r in drafted], 0.95),
        },
        "requests_with_drafts": len(drafted) / max(len(rows), 1),
        "drafts_per_request": sum(r["drafts"] for r in rows) / max(len(rows), 1),
        "ghost_rate": sum(r["ghost"] for r in rows) / max(len(rows), 1),
    }


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def measure(lines_per_file: int = 4, chars: int = 10) -> dict[str, Any]:
    typists = {name: Typist(stream) for name, stream in MODES.items()}
    for typist in typists.values():
        await typist.session.start()
    try:
        for typist in typists.values():
            await typist.session.wait_ready()
        before = load_average()
        lines = [
            t
            for f in typing_replay.TYPED_FILES
            for t in typing_replay.lines_to_type(f, lines_per_file, chars)
        ]
        order = list(typists.values())
        for i, line in enumerate(lines):
            # Alternate who goes first, so neither always types right after the other's burst.
            for typist in order if i % 2 == 0 else order[::-1]:
                await typist.type_line(line)
        after = load_average()
    finally:
        for typist in typists.values():
            await typist.session.stop()
    # The same keystroke typed into both servers: on − off per keystroke is the paired cost, less
    # exposed to the load drifting between keystrokes than the two distributions are.
    off, on = (typists[name].rows[WARMUP_KEYS:] for name in MODES)
    paired = [b["final_ms"] - a["final_ms"] for a, b in zip(off, on, strict=True)]
    return {
        "load": f"{before} → {after}",
        "files": [f.name for f in typing_replay.TYPED_FILES],
        "modes": {name: _summary(t.rows) for name, t in typists.items()},
        "paired_on_minus_off_ms": {
            "p25": typing_replay._pct(paired, 0.25),
            "p50": typing_replay._pct(paired, 0.5),
            "p75": typing_replay._pct(paired, 0.75),
        },
    }


def markdown(r: dict[str, Any]) -> str:
    out = [
        "# Live drafts (streamDrafts): what they cost a keystroke",
        "",
        f"`nice -n 10 python bench/drafts_bench.py` (`make bench`); load average (1/5/15 min) {r['load']}.",
        f"Two servers, default settings but streamDrafts, typed into alternately line by line "
        f"({', '.join(r['files'])}); each key waits for the answer.",
        "",
        "| | keystrokes | keystroke → final ghost p50 / p95 (ms) | → first draft p50 / p95 (ms) "
        "| drafts per request | ghost shown |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in r["modes"].items():
        first = m["first_draft_ms"]
        drafted = f"{first['p50']:.0f} / {first['p95']:.0f}" if m["requests_with_drafts"] else "—"
        out.append(
            f"| {name} | {m['keystrokes']} | {m['final_ms']['p50']:.0f} / {m['final_ms']['p95']:.0f}"
            f" | {drafted} | {m['drafts_per_request']:.1f} | {m['ghost_rate']:.0%} |"
        )
    d = r["paired_on_minus_off_ms"]
    out += [
        "",
        f"Per keystroke, drafts on − off (the same key in both): p25 {d['p25']:+.0f}, "
        f"p50 {d['p50']:+.0f}, p75 {d['p75']:+.0f} ms.",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    result = asyncio.run(measure())
    (BENCH / "drafts.json").write_text(json.dumps(result, indent=2) + "\n")
    (BENCH / "drafts.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
