"""`make bench` soak: type into the real server for a while and record how every request was answered.

Writes bench/soak.json and prints one line: requests, answered/cancelled/errored/unanswered, server and
worker RSS at start and end. Figures only; the invariants are asserted by tests/reliability/test_soak.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.lsp_process import LspProcess  # noqa: E402
from tests.reliability.typing_soak import run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keystrokes", type=int, default=1200)
    parser.add_argument("--out", default=str(ROOT / "bench" / "soak.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lsp = LspProcess(log=Path(tmp) / "server.log")
        try:
            figures = run_soak(lsp, keystrokes=args.keystrokes)
            exit_code = lsp.exit()
        finally:
            lsp.kill()
    result = {**figures.as_dict(), "exit_code": exit_code, "command": "python bench/soak.py"}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"soak: {figures.requests} requests over {figures.keystrokes} keystrokes in {figures.seconds} s: "
        f"{figures.answered} answered ({figures.with_items} with a suggestion), {figures.cancelled} "
        f"cancelled, {figures.errored} errored, {figures.unanswered} unanswered, "
        f"{figures.duplicated} answered twice; server RSS {figures.server_rss_kb_start / 1024:.1f} -> "
        f"{figures.server_rss_kb_end / 1024:.1f} MB, worker RSS {figures.worker_rss_kb_start / 1024:.1f} "
        f"-> {figures.worker_rss_kb_end / 1024:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
