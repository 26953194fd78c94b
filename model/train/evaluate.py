"""Evaluate an infill checkpoint on held-out files: exact match, spliced-file parse rate, doctest pass rate, latency.

Holes are cut the way the editor asks (rest of line at a token boundary, a whole statement block via tree-sitter);
baselines: an empty hole and "repeat the previous line". Decodes with the project's Engine (the LSP's own path).
Writes a JSON and a markdown table. No training logic here.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tree_sitter_language_pack import get_parser

from .corpus import DATA, load

PARSER = get_parser("python")


@dataclass(frozen=True)
class Hole:
    kind: str  # "single_line" | "multi_line" | "doctest"
    prefix: str
    suffix: str
    middle: str
    origin: str
    test: str = ""  # doctest kind: the function source with a {fill} placeholder


def parses(source: str) -> bool:
    """The spliced file compiles. `ast`, not tree-sitter: tree-sitter accepts an empty block without an error node."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def previous_line_guess(prefix: str, n_lines: int) -> str:
    """Baseline: the text of the line(s) above, from the cursor's column on."""
    lines = prefix.split("\n")
    col = len(lines[-1])
    above = lines[-1 - n_lines : -1] if len(lines) > n_lines else []
    if not above:
        return ""
    guess = [above[0][col:]] + above[1:]
    return "\n".join(guess)


def single_line_holes(text: str, origin: str, tok, rng: random.Random, canvas: int, k: int) -> list[Hole]:
    """Rest of line from a token boundary on a non-blank line (the middle never holds the newline)."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = sorted({a for a, _ in enc.offset_mapping})
    lines = [i for i, line in enumerate(text.split("\n")) if line.strip() and not line.strip().startswith("#")]
    line_starts = [0]
    for line in text.split("\n"):
        line_starts.append(line_starts[-1] + len(line) + 1)
    holes = []
    for i in rng.sample(lines, min(len(lines), k * 3)):
        a, b = line_starts[i], line_starts[i + 1] - 1
        content = a + len(text[a:b]) - len(text[a:b].lstrip())
        cuts = [s for s in starts if content <= s < b]
        if not cuts:
            continue
        cut = content if rng.random() < 0.4 else rng.choice(cuts)
        middle = text[cut:b]
        if not middle.strip() or len(tok(middle, add_special_tokens=False).input_ids) > canvas - 1:
            continue
        holes.append(Hole("single_line", text[:cut], text[b:], middle, origin))
        if len(holes) == k:
            break
    return holes


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def multi_line_holes(text: str, origin: str, tok, rng: random.Random, canvas: int, k: int) -> list[Hole]:
    """A statement block (function/loop/if body) of 2+ lines that fits the canvas, cut after its indentation."""
    data = text.encode()
    tree = PARSER.parse(data)
    blocks = [n for n in _walk(tree.root_node) if n.type == "block" and n.end_point[0] > n.start_point[0]]
    rng.shuffle(blocks)
    holes = []
    for n in blocks:
        middle = data[n.start_byte : n.end_byte].decode()
        if len(tok(middle, add_special_tokens=False).input_ids) > canvas - 1:
            continue
        holes.append(Hole("multi_line", data[: n.start_byte].decode(), data[n.end_byte :].decode(), middle, origin))
        if len(holes) == k:
            break
    return holes


def doctest_holes(text: str, origin: str, tok, rng: random.Random, canvas: int) -> list[Hole]:
    """Top-level functions whose doctests pass on their own; the hole is one line of their body."""
    data = text.encode()
    holes = []
    for n in PARSER.parse(data).root_node.children:
        fn = n if n.type == "function_definition" else None
        if fn is None or ">>>" not in data[fn.start_byte : fn.end_byte].decode():
            continue
        src = data[fn.start_byte : fn.end_byte].decode()
        body = [n for n in _walk(fn) if n.type in ("return_statement", "expression_statement", "assignment")
                and n.start_point[0] > fn.start_point[0] and n.type != "string"]
        body = [n for n in body if not data[n.start_byte : n.end_byte].startswith((b'"', b"'"))]
        if not body:
            continue
        stmt = rng.choice(body)
        a, b = stmt.start_byte - fn.start_byte, stmt.end_byte - fn.start_byte
        line_end = src.encode().find(b"\n", b)
        b = len(src.encode()) if line_end < 0 else line_end
        raw = src.encode()
        middle = raw[a:b].decode()
        if "\n" in middle or len(tok(middle, add_special_tokens=False).input_ids) > canvas - 1:
            continue
        template = raw[:a].decode().replace("{", "{{").replace("}", "}}") + "{fill}" + raw[b:].decode().replace("{", "{{").replace("}", "}}")
        if not run_doctest(template.format(fill=middle)) or run_doctest(template.format(fill="")):
            continue
        prefix_in_file = data[: fn.start_byte + a].decode()
        suffix_in_file = data[fn.start_byte + b :].decode()
        holes.append(Hole("doctest", prefix_in_file, suffix_in_file, middle, origin, template))
    return holes


def run_doctest(function_source: str, timeout: float = 5.0) -> bool:
    """Define the function alone in a fresh interpreter and run its doctests."""
    script = (
        "import doctest, sys\nns = {}\nexec(compile(sys.stdin.read(), 'hole', 'exec'), ns)\n"
        "fn = [v for k, v in ns.items() if callable(v) and not k.startswith('__')][0]\n"
        "r = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)\n"
        "for t in doctest.DocTestFinder().find(fn, globs=ns): r.run(t, out=lambda s: None)\n"
        "sys.exit(0 if r.failures == 0 and r.tries > 0 else 1)\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", script], input=textwrap.dedent(function_source), text=True,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def build_holes(tok, canvas: int, n_files: int, per_file: int, seed: int = 0) -> list[Hole]:
    rng = random.Random(seed)
    records = load("held_out")
    rng.shuffle(records)
    holes: list[Hole] = []
    for r in records:
        if not r["origin"].endswith(".py"):
            continue
        holes += doctest_holes(r["text"], r["origin"], tok, rng, canvas) if ">>>" in r["text"] else []
    for r in records[:n_files]:
        holes += single_line_holes(r["text"], r["origin"], tok, rng, canvas, per_file)
        holes += multi_line_holes(r["text"], r["origin"], tok, rng, canvas, max(1, per_file // 2))
    return holes


def same(a: str, b: str) -> bool:
    return a.rstrip() == b.rstrip()


def score(holes: list[Hole], preds: list[str], latencies: list[float] | None = None) -> dict:
    out = {}
    for kind in ("single_line", "multi_line", "doctest"):
        idx = [i for i, h in enumerate(holes) if h.kind == kind]
        if not idx:
            continue
        row = {
            "n": len(idx),
            "exact_match": sum(same(preds[i], holes[i].middle) for i in idx) / len(idx),
            "parses": sum(parses(holes[i].prefix + preds[i] + holes[i].suffix) for i in idx) / len(idx),
            "empty": sum(not preds[i].strip() for i in idx) / len(idx),
        }
        if kind == "doctest":
            row["pass"] = sum(run_doctest(holes[i].test.format(fill=preds[i])) for i in idx) / len(idx)
        if latencies:
            row["latency_ms_median"] = statistics.median(latencies[i] for i in idx)
        out[kind] = row
    return out


def decode_all(path: Path, holes: list[Hole], steps: int, threads: int, **sampler) -> tuple[list[str], list[float], list[dict]]:
    torch.set_num_threads(threads)
    from ..engine import Engine

    eng = Engine.load(path, device="cpu")
    eng.infill("def f(x):\n    return ", "\n", steps=steps, seed=0, **sampler)  # warm-up
    preds, lat, extra = [], [], []
    for h in holes:
        # The editor never sends a middle longer than one canvas for these holes; cut the fill at the hole's kind:
        # a single-line hole keeps only the first line (the LSP's post-processing does the same).
        t0 = time.perf_counter()
        r = eng.infill(h.prefix, h.suffix, steps=steps, seed=0, **sampler)
        lat.append((time.perf_counter() - t0) * 1000)
        text = r.text.split("\n")[0] if h.kind in ("single_line", "doctest") else r.text
        preds.append(text)
        extra.append({"encode_ms": r.encode_ms, "denoise_ms": r.denoise_ms, "forwards": r.forwards})
    return preds, lat, extra


def markdown(results: dict) -> str:
    lines = ["| system | hole | n | exact match | spliced file parses | empty | doctest pass | median latency (ms) |",
             "|---|---|---|---|---|---|---|---|"]
    for system, rows in results["systems"].items():
        for kind, r in rows.items():
            passed = f"{r['pass']:.1%}" if "pass" in r else "-"
            latency = f"{r['latency_ms_median']:.0f}" if "latency_ms_median" in r else "-"
            lines.append(f"| {system} | {kind} | {r['n']} | {r['exact_match']:.1%} | {r['parses']:.1%} | "
                         f"{r['empty']:.1%} | {passed} | {latency} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=Path(__file__).resolve().parent.parent / "embedded")
    p.add_argument("--files", type=int, default=60)
    p.add_argument("--per-file", type=int, default=4)
    p.add_argument("--steps", type=int, default=None, help="default: the checkpoint's max_denoising_steps, else 16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rule", default="confidence", help="sampler commit rule: confidence (the LSP's default) | entropy")
    p.add_argument("--t-max", type=float, default=None, help="default: the checkpoint's generation_config t_max")
    p.add_argument("--t-min", type=float, default=None, help="default: the checkpoint's generation_config t_min")
    p.add_argument("--limit", type=int, default=0, help="evaluate at most N holes (quick look)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "runs" / "eval")
    args = p.parse_args()

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    canvas = json.loads((args.checkpoint / "config.json").read_text())["canvas_length"]
    # Sampler defaults travel with the checkpoint (generation_config.json), so `make eval` measures what ships.
    gen_path = args.checkpoint / "generation_config.json"
    gen = json.loads(gen_path.read_text()) if gen_path.exists() else {}
    args.steps = args.steps or gen.get("max_denoising_steps") or 16
    args.t_max = args.t_max if args.t_max is not None else gen.get("t_max")
    args.t_min = args.t_min if args.t_min is not None else gen.get("t_min")
    holes = build_holes(tok, canvas, args.files, args.per_file)
    if args.limit:
        holes = holes[: args.limit] if not any(h.kind == "doctest" for h in holes) else (
            [h for h in holes if h.kind == "doctest"] + [h for h in holes if h.kind != "doctest"])[: args.limit]
    print({k: sum(h.kind == k for h in holes) for k in ("single_line", "multi_line", "doctest")})
    sampler = {k: v for k, v in (("rule", args.rule), ("t_max", args.t_max), ("t_min", args.t_min)) if v is not None}
    preds, lat, extra = decode_all(args.checkpoint, holes, args.steps, args.threads, **sampler)
    baselines = {
        "empty hole": [""] * len(holes),
        "repeat previous line": [previous_line_guess(h.prefix, max(1, h.middle.count("\n") + 1)) for h in holes],
    }
    results = {
        "checkpoint": str(args.checkpoint), "steps": args.steps, "sampler": sampler, "threads": args.threads,
        "systems": {"model": score(holes, preds, lat), **{k: score(holes, v) for k, v in baselines.items()}},
        "denoise_ms_median": statistics.median(e["denoise_ms"] for e in extra),
        "encode_ms_median": statistics.median(e["encode_ms"] for e in extra),
        "forwards_mean": statistics.mean(e["forwards"] for e in extra),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(results, indent=2))
    (args.out / "eval.md").write_text(markdown(results))
    with open(args.out / "samples.jsonl", "w") as f:
        for h, pr in zip(holes, preds):
            f.write(json.dumps({"kind": h.kind, "origin": h.origin, "truth": h.middle, "pred": pr}) + "\n")
    print(markdown(results))
    print({k: results[k] for k in ("denoise_ms_median", "encode_ms_median", "forwards_mean")})


if __name__ == "__main__":
    main()
