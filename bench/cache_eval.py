"""Typing replay: how many keystrokes the suggestion cache answers (typing-through) and how many model calls it saves.

A user types held-out lines (bench/corpus, examples/) one character at a time, an automatic request after
each keystroke. A request goes first to the server's SuggestCache (diffgem_lsp/suggest_cache.py); on a
miss the engine runs in-process on the server's own infill canvas and post-processing, with the
shipped automatic settings, and the answer is stored. Writes bench/cache_results.{json,md}.

    .venv/bin/python bench/cache_eval.py [--lines 12]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffgem_lsp import canvas as C  # noqa: E402
from diffgem_lsp.settings import Settings  # noqa: E402
from diffgem_lsp.suggest_cache import SuggestCache, Suggestion  # noqa: E402

FILES = ["bench/corpus/ring_buffer.js", "examples/demo.py"]
LANGUAGE = {".py": "python", ".js": "javascript"}


def typed_lines(count: int) -> list[tuple[str, str, int, int]]:
    """(path, text, line start offset, line end offset) of code lines to type, spread over the files."""
    out = []
    for name in FILES:
        text = (ROOT / name).read_text()
        starts, offset = [], 0
        for line in text.split("\n"):
            stripped = line.strip()
            if len(stripped) >= 16 and not stripped.startswith(("#", "//", "*", '"')):
                indent = len(line) - len(line.lstrip())
                starts.append((offset + indent, offset + len(line)))
            offset += len(line) + 1
        step = max(1, len(starts) // (count // len(FILES)))
        out += [(name, text, s, e) for s, e in starts[::step][: count // len(FILES)]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/cache_results")
    args = parser.parse_args()

    import torch
    from diffgem_model.engine import Engine, GenerateParams
    from diffgem_model.sampler import SamplerSettings

    torch.set_num_threads(args.threads)
    engine = Engine.load(device="cpu")
    shipped = Settings()
    sampler = SamplerSettings(
        rule=shipped.sampler,
        max_steps=shipped.automatic_steps,
        confidence_threshold=shipped.confidence_threshold,
        **engine.sampler_defaults(),
    )
    keystrokes = model_calls = hits = silent = 0
    t0 = time.perf_counter()
    for path, text, start, end in typed_lines(args.lines):
        cache = SuggestCache()
        language = LANGUAGE[Path(path).suffix]
        # The user deletes the line's code, then types it back; a request after every keystroke.
        base = text[:start] + text[end:]
        for k in range(0, end - start + 1):
            document = base[:start] + text[start : start + k] + base[start:]
            offset = start + k
            keystrokes += 1
            if cache.lookup(path, document, offset) is not None:
                hits += 1
                continue
            canvas = C.build_infill_canvas(document, language, C.position_at(document, offset))
            if canvas is None:
                silent += 1  # mid-word: the server asks nothing either
                continue
            model_calls += 1
            result = engine.generate(
                GenerateParams(
                    prefix=canvas.prefix,
                    suffix=canvas.suffix,
                    max_tokens=canvas.max_tokens,
                    sampler=sampler,
                    seed=shipped.seed,
                )
            )
            fill = C.postprocess_infill(canvas, result.text)
            shown = [] if fill is None else [Suggestion(fill.insert_text)]
            cache.store(path, document, offset, shown)
    seconds = time.perf_counter() - t0
    report = {
        "command": "python bench/cache_eval.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, {args.threads} thread(s)",
        "model": engine.description,
        "lines": args.lines,
        "keystrokes": keystrokes,
        "model_calls": model_calls,
        "cache_answers": hits,
        "no_request_needed": silent,
        "answered_from_cache": hits / max(hits + model_calls, 1),
        "seconds": seconds,
    }
    md = "\n".join(
        [
            "# Suggestion cache on a typing replay",
            "",
            f"`{report['command']}` on {report['machine']}; checkpoint: {report['model']}.",
            "",
            f"{args.lines} held-out code lines ({', '.join(FILES)}) typed one character at a time, an",
            "automatic request after each keystroke (shipped automatic settings). A keystroke is answered",
            "without the model when the cache has that document state or the typed characters match the",
            "suggestion shown (typing-through); mid-word positions ask nothing (as the server).",
            "",
            "| keystrokes | no request (mid-word) | answered from the cache | model calls |"
            " cache share of requests |",
            "|---|---|---|---|---|",
            f"| {keystrokes} | {silent} | {hits} | {model_calls} "
            f"| {report['answered_from_cache']:.1%} |",
            "",
            f"Model calls saved: {hits} of {hits + model_calls} requests; {seconds:.0f} s in all.",
            "",
        ]
    )
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
