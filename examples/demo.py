"""`make demo`: start the real diffgem-lsp server and talk LSP to it like an editor on the example files.

For each hole in examples/holes/ it prints the context, the inline completion and its latency; then it
asks for one "Rewrite selection" code action on examples/rewrite/average.py and prints the edit.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

# editor_client.py sits beside this script (on sys.path when it runs).
from editor_client import EditorSession, Hole, apply_edits, language_of

EXAMPLES = Path(__file__).resolve().parent
SELECTION = ("«", "»")


def show_context(hole: Hole, before: int = 3) -> str:
    lines = hole.text.split("\n")
    shown = lines[max(0, hole.line - before) : hole.line + 2]
    return "\n".join("    │ " + line for line in shown)


def model_banner() -> str:
    from diffgem_model import EMBEDDED_CHECKPOINT

    card = EMBEDDED_CHECKPOINT / "README.md"
    return f"embedded model: trained checkpoint ({card.relative_to(EXAMPLES.parent)})"


async def main() -> int:
    print(f"diffgem-lsp demo — {model_banner()}\n")
    session = EditorSession(options={"invokedSteps": 16})
    t0 = time.perf_counter()
    await session.start()
    load_s = await session.wait_ready()
    print(
        f"server up, model loaded in {time.perf_counter() - t0:.1f} s (worker load wait {load_s:.1f} s)\n"
    )
    latencies = []
    for path in sorted((EXAMPLES / "holes").iterdir()):
        hole = Hole.from_marked(path.read_text())
        uri = path.as_uri()
        session.open(uri, hole.text, language_of(path.name))
        await session.inline(
            uri, hole.line, hole.character
        )  # warm the prompt cache, as typing would
        t = time.perf_counter()
        items = await session.inline(uri, hole.line, hole.character)
        latency = (time.perf_counter() - t) * 1000
        latencies.append(latency)
        print(f"── {path.relative_to(EXAMPLES)}  (line {hole.line + 1}, col {hole.character + 1})")
        print(show_context(hole))
        if items:
            text = items[0].insert_text
            shown = text if isinstance(text, str) else text.value
            print(f"  ⟶ completion ({latency:.0f} ms): {shown!r}")
        else:
            raw = ((await session.worker_status()).get("last") or {}).get("text", "")
            print(
                f"  ⟶ no completion ({latency:.0f} ms); the model wrote {raw!r}, which post-processing"
            )
            print("    rejected (empty, or the file would parse worse with it)")
        print()
    print(
        f"inline completion latency: median {statistics.median(latencies):.0f} ms over {len(latencies)} holes\n"
    )

    path = EXAMPLES / "rewrite" / "average.py"
    marked = path.read_text()
    start_off, end_off = marked.index(SELECTION[0]), marked.index(SELECTION[1]) - 1
    text = marked.replace(SELECTION[0], "").replace(SELECTION[1], "")
    start = (text[:start_off].count("\n"), len(text[:start_off].rsplit("\n", 1)[-1]))
    end = (text[:end_off].count("\n"), len(text[:end_off].rsplit("\n", 1)[-1]))
    uri = path.as_uri()
    session.open(uri, text, "python")
    t = time.perf_counter()
    action = await session.rewrite(uri, start, end)
    latency = (time.perf_counter() - t) * 1000
    print(f"── Rewrite selection on {path.relative_to(EXAMPLES)} ({latency:.0f} ms)")
    if action is None or action.edit is None or not action.edit.document_changes:
        reason = action.disabled.reason if action is not None and action.disabled else "no action"
        print(f"  no edit: {reason}")
    else:
        edits = action.edit.document_changes[0].edits
        print(f"  {len(edits)} text edit(s); the file becomes:")
        print("\n".join("    │ " + line for line in apply_edits(text, edits).split("\n")))
    await session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
