"""A typing soak: keystrokes with automatic requests (and some invoked ones) against the real server.

Shared by the bounded soak test (asserts: every request answered exactly once, memory flat) and
bench/soak.py (figures for `make bench`). Counts answers by kind and samples server and worker RSS.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from .lsp_process import FAST, LspProcess, rss_kb

SOURCE = "def area(width, height):\n    return width * height\n\n\n"
TYPED = "def perimeter(width, height):\n    return 2 * (width + height)\n\n\nprint(area(2, 3))\n"


@dataclass
class SoakFigures:
    keystrokes: int
    requests: int
    answered: int  # a result (with or without a suggestion)
    with_items: int  # ... of which showed a suggestion
    cancelled: int  # -32800: superseded by a newer keystroke
    errored: int  # any other error
    unanswered: int
    duplicated: int  # requests with more than one answer
    server_rss_kb_start: int
    server_rss_kb_end: int
    worker_rss_kb_start: int
    worker_rss_kb_end: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def run_soak(
    lsp: LspProcess, keystrokes: int, pause_s: float = 0.08, invoke_every: int = 25
) -> SoakFigures:
    """Type `keystrokes` characters (cycling through TYPED) into a fresh document; return the figures."""
    assert "result" in lsp.initialize({**FAST, "debounceMs": 20, "promptCacheMb": 16})
    lsp.wait_state(("ready",))
    uri = "file:///soak/typing.py"
    lsp.open(uri, SOURCE)
    line, character, version = SOURCE.count("\n"), 0, 1
    requests: list[int] = []
    # Warm up (first generation, allocator pools) before the start figures.
    requests.append(
        lsp.request("textDocument/inlineCompletion", _params(uri, line, character, automatic=False))
    )
    lsp.response(requests[-1], timeout=120)
    worker = lsp.status()["pid"]
    server_start, worker_start = rss_kb(lsp.pid), rss_kb(worker)
    t0 = time.monotonic()
    for i in range(keystrokes):
        char = TYPED[i % len(TYPED)]
        version += 1
        at = {"line": line, "character": character}
        change = {"range": {"start": at, "end": at}, "text": char}
        lsp.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )
        line, character = (line + 1, 0) if char == "\n" else (line, character + 1)
        automatic = (i + 1) % invoke_every != 0
        requests.append(
            lsp.request("textDocument/inlineCompletion", _params(uri, line, character, automatic))
        )
        if not automatic:  # the user stops typing and waits for the invoked suggestion
            lsp.response(requests[-1], timeout=120)
        time.sleep(pause_s)
    lsp.wait(lambda: all(lsp.responses.get(r) for r in requests), timeout=180)
    seconds = time.monotonic() - t0
    answers = [lsp.responses.get(r, []) for r in requests]
    first = [a[0] for a in answers if a]
    codes = [(a.get("error") or {}).get("code") for a in first]
    return SoakFigures(
        keystrokes=keystrokes,
        requests=len(requests),
        answered=sum(1 for a in first if "result" in a),
        with_items=sum(1 for a in first if (a.get("result") or {}).get("items")),
        cancelled=codes.count(-32800),
        errored=sum(1 for c in codes if c is not None and c != -32800),
        unanswered=sum(1 for a in answers if not a),
        duplicated=sum(1 for a in answers if len(a) > 1),
        server_rss_kb_start=server_start,
        server_rss_kb_end=rss_kb(lsp.pid),
        worker_rss_kb_start=worker_start,
        worker_rss_kb_end=rss_kb(worker),
        seconds=round(seconds, 1),
    )


def _params(uri: str, line: int, character: int, automatic: bool) -> dict:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 2 if automatic else 1},
    }
