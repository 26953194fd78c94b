"""Repository-context gain: infill with vs without snippets of the package's other files, on held-out packages.

Drives the engine in-process (the embedded checkpoint) with the server's own canvas, request, context
selection and post-processing: canvas.build_infill_canvas + pipelines.infill_params, then what
cross_file.context_header puts before the prefix (canvas/context.py: Jaccard over identifier windows of
the files the document imports and of the other files, as if open) and canvas.postprocess_infill.
Holes: the rest of a line from an editor cursor (model/train/holes.single_line_holes, "editor") in
files of the held-out validation or test split (package-level split: the model never saw these
packages), kept only when that rest uses a name defined in another file of the package and not in the
hole's own file (the issue's repository-level hole). Variants: no context; context as the server sends
it; context with the file's prefix shortened so the header fits the fim layout's 320 prefix tokens
(model/layouts.py cuts the prefix from the front, header first). Writes bench/context_results.{json,md}.

    nice -n 10 .venv/bin/python bench/context_eval.py [--split validation] [--holes 60]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_common import header, load_engine, write_report  # noqa: E402
from diffgem_lsp import canvas as C  # noqa: E402
from diffgem_lsp.canvas.context import (  # noqa: E402
    IDENTIFIER,
    SourceText,
    format_context,
    imported_paths,
    select_snippets,
)
from diffgem_lsp.canvas.languages import parse  # noqa: E402
from diffgem_lsp.cross_file import BUDGET_CHARS  # noqa: E402
from diffgem_lsp.pipelines import infill_params  # noqa: E402
from diffgem_lsp.settings import Settings  # noqa: E402

CORPUS = ROOT / "model/data/corpus.jsonl"
PREFIX_TOKENS = 320
# A header a third of the prefix window (~3.5 characters a token), leaving the rest to the file.
SMALL_BUDGET_CHARS = 400  # model/layouts.fim_prompt's max_prefix_tokens
# Names a file defines (top-level or member), per language: enough to tell where a name comes from.
DEFINES = {
    "python": r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=",
    "javascript": r"(?:function\*?|class)\s+(\w+)|(?:const|let|var)\s+(\w+)|^\s+(\w+)\s*\([^)]*\)\s*\{",
    "typescript": r"(?:function\*?|class|interface|type|enum)\s+(\w+)|(?:const|let|var)\s+(\w+)",
    "go": r"^func\s+(?:\([^)]*\)\s*)?(\w+)|^type\s+(\w+)|^\s*(\w+)\s+=",
    "rust": r"\b(?:fn|struct|enum|trait|type|const|static|mod)\s+(\w+)",
}


def defined(text: str, language: str) -> set[str]:
    found: set[str] = set()
    for match in re.finditer(DEFINES[language], text, re.M):
        found.update(g for g in match.groups() if g and len(g) > 2)
    return found


def in_prose(hole) -> bool:
    """Whether the hole's answer starts inside a comment or a string literal (tree-sitter)."""
    text = hole.prefix + hole.middle + hole.suffix
    tree = parse(text, hole.language)
    if tree is None:
        return True
    at = len((hole.prefix + hole.middle[:1]).encode("utf-8")) - 1
    node = tree.root_node.descendant_for_byte_range(at, at + 1)
    while node is not None:
        if "comment" in node.type or "string" in node.type:
            return True
        node = node.parent
    return False


def relative(origin: str) -> str:
    return origin.rsplit(":", 1)[-1]


def load_holes(split: str, count: int, tok, canvas: int, seed: int = 0) -> list[tuple]:
    """(hole, package files, the names its answer takes from other files) for repository-level
    holes, one per file at most, spread over packages (round-robin)."""
    from diffgem_model.train.holes import single_line_holes

    packages: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in CORPUS.open():
        record = json.loads(line)
        if record["split"] == split:
            packages[(record["package"], record["language"])].append(record)
    rng = random.Random(seed)
    per_file: list[tuple] = []
    for key in sorted(packages):
        files = packages[key]
        if len(files) < 2:
            continue
        names = {r["origin"]: defined(r["text"], r["language"]) for r in files}
        for r in sorted(files, key=lambda r: r["sha256"]):
            elsewhere = set().union(*(n for o, n in names.items() if o != r["origin"]))
            elsewhere -= names[r["origin"]]
            for hole in single_line_holes(
                r["text"], r["origin"], r["language"], tok, rng, canvas, 6, "editor"
            ):
                if in_prose(hole):
                    continue  # a name in a comment or string is not a use of it
                targets = {n for n in IDENTIFIER.findall(hole.middle) if len(n) > 3} & elsewhere
                if targets:
                    per_file.append((key, hole, files, frozenset(targets)))
                    break
    by_package: dict[tuple, list] = defaultdict(list)
    for item in per_file:
        by_package[item[0]].append(item[1:])
    # Round-robin over packages, so no one package is most of the set.
    picked: list[tuple] = []
    queues = [by_package[k] for k in sorted(by_package)]
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def context_for(hole, files: list[dict], budget: int = BUDGET_CHARS) -> str:
    """What cross_file.context_header builds: imported files first named, the others as if open."""
    here = relative(hole.origin)
    others = [r for r in files if r["origin"] != hole.origin]
    pool = [relative(r["origin"]) for r in others]
    text = hole.prefix + hole.suffix
    imported = set(imported_paths(text, hole.language, here, pool)[:8])
    sources = [SourceText(relative(r["origin"]), r["text"]) for r in others]
    sources.sort(key=lambda s: s.path not in imported)
    line_start = hole.prefix.rfind("\n") + 1
    return format_context(select_snippets(text[:line_start], sources, budget), hole.language)


def fitted(tok, context: str, prefix: str) -> str:
    """The prefix's tail (whole lines) that leaves the header inside the 320 prefix tokens."""
    room = PREFIX_TOKENS - len(tok(context, add_special_tokens=False).input_ids)
    lines = prefix.split("\n")
    keep = len(lines)
    while (
        keep > 1 and len(tok("\n".join(lines[-keep:]), add_special_tokens=False).input_ids) > room
    ):
        keep -= 1
    return "\n".join(lines[-keep:]) if keep < len(lines) else prefix


def markdown(report: dict) -> str:
    out = [
        "# Repository-context gain",
        "",
        f"`{report['command']}` on {report['machine']}, load average {report['load_average']} at the"
        f" start, {report['load_average_at_end']} at the end; checkpoint: {report['model']}.",
        "",
        f"{report['holes']} rest-of-line holes at editor cursor positions in {report['packages']} packages"
        f" of the held-out `{report['split']}` split whose answer uses a name defined in another file",
        "of the package. *Server*: the snippet header cross_file.py builds, before the canvas prefix;",
        "*fitted*: the same header with the prefix cut (whole lines) so the header stays inside the",
        f"fim layout's 320 prefix tokens; *fitted, {SMALL_BUDGET_CHARS}-char header*: a smaller snippet",
        "budget, the prefix cut the same way. *Header kept*: holes where the header's first token is still",
        "in the encoded prompt. Exact: the post-processed fill equals the line's real rest; edit sim.:",
        "mean character similarity (model/train/holes.edit_similarity).",
        "",
        "| variant | exact | edit sim. | uses the other file's name | header kept |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["variants"].items():
        out.append(
            f"| {name} | {r['exact']:.1%} | {r['similarity']:.3f} | {r['name_used']:.1%} "
            f"| {r['header_kept']:.1%} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--holes", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or ROOT / f"bench/context_results_{args.split}"

    from diffgem_model.train.holes import edit_similarity

    engine, sampler = load_engine(args.threads)
    tok = engine.tokenizer
    server = Settings()
    picked = load_holes(args.split, args.holes, tok, engine.canvas_length)
    rows: dict[str, list[dict]] = defaultdict(list)
    examples: list[dict] = []
    for hole, files, targets in picked:
        document = hole.prefix + hole.suffix
        canvas = C.build_infill_canvas(
            document, hole.language, C.position_at(document, len(hole.prefix))
        )
        if canvas is None:
            continue
        base = replace(infill_params(canvas, server, automatic=False), sampler=sampler)
        context = context_for(hole, files)
        small = context_for(hole, files, SMALL_BUDGET_CHARS)
        variants = {
            "no context": base.prefix,
            "server (header + prefix)": context + base.prefix,
            "fitted (header + shortened prefix)": context + fitted(tok, context, base.prefix),
            f"fitted, {SMALL_BUDGET_CHARS}-char header": small + fitted(tok, small, base.prefix),
        }
        for name, prefix in variants.items():
            params = replace(base, prefix=prefix)
            prompt = engine.build_prompt(params)
            used = small if name.startswith("fitted, ") else context
            kept = bool(used) and name != "no context" and _header_kept(tok, used, prompt.ids)
            result = engine.generate(params)
            processed = C.postprocess_infill(canvas, result.text)
            fill = processed.insert_text if processed is not None else ""
            rows[name].append(
                {
                    "exact": fill.rstrip() == hole.middle.rstrip(),
                    "similarity": edit_similarity(fill.rstrip(), hole.middle.rstrip()),
                    "name_used": bool(targets & set(IDENTIFIER.findall(fill))),
                    "header_kept": kept,
                }
            )
            if len(examples) < 45:
                examples.append(
                    {"origin": hole.origin, "variant": name, "want": hole.middle, "fill": fill}
                )
    report: dict = header("context_eval.py", args.threads, engine) | {
        "split": args.split,
        "holes": len(rows["no context"]),
        "packages": len({h.origin.split(":")[1] for h, _, _ in picked}),
        "variants": {
            name: {k: statistics.fmean(r[k] for r in rs) for k in rs[0]}
            for name, rs in rows.items()
        },
        "examples": examples,
    }
    write_report(out, report, markdown)


def _header_kept(tok, context: str, ids: list[int]) -> bool:
    """Whether the header's first line still opens the prefix part of the prompt (not trimmed away)."""
    first = tok(context.split("\n", 1)[0], add_special_tokens=False).input_ids[:3]
    return any(ids[i : i + len(first)] == first for i in range(len(ids)))


if __name__ == "__main__":
    main()
