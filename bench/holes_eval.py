"""Multi-hole benchmark: two statements of a function punched out, filled jointly in one canvas vs one at a time.

Drives the engine in-process (diffgem_model, the embedded checkpoint) with the server's own pure multi-hole
canvas (diffgem_lsp.canvas.multihole): jointly = one canvas, the code between the holes pinned (the layout
MultiHoleCanvas.request() documents); one at a time = a plain infill per hole, the other's placeholder
in place. Held-out inputs: bench/corpus and examples/. Writes bench/holes_results.{json,md}; asserts nothing.

    .venv/bin/python bench/holes_eval.py [--max-cases 60]
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_common import header, load_engine, write_report  # noqa: E402
from diffgem_lsp.canvas.languages import parse  # noqa: E402
from diffgem_lsp.canvas.multihole import (  # noqa: E402
    MultiHoleCanvas,
    build_multihole_canvases,
    postprocess_multihole,
)
from diffgem_lsp.canvas.positions import offset_of_byte  # noqa: E402
from diffgem_lsp.canvas.repair import file_parses  # noqa: E402

LANGUAGE = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rs": "rust"}
PLACEHOLDER = {
    "python": "raise NotImplementedError",  # a lone `pass` among statements is deliberate
    "javascript": "throw new Error('TODO');",
    "typescript": "throw new Error('TODO');",
    "go": 'panic("TODO")',
    "rust": "todo!();",
}
FUNCTIONS = ("function_definition", "function_declaration", "method_definition", "function_item")
BODIES = ("block", "statement_block")
MAX_STATEMENT_CHARS = 60  # a hole the 32-token canvas can hold alongside another and the gap


@dataclass(frozen=True)
class Case:
    path: str
    language: str
    original: str
    holed: str  # the file with both statements replaced by placeholders
    truths: tuple[str, str]
    spans: tuple[tuple[int, int], tuple[int, int]]  # str offsets of the statements in `original`


def corpus_files() -> list[Path]:
    paths = sorted((ROOT / "bench/corpus").glob("*")) + sorted((ROOT / "examples").rglob("*"))
    return [p for p in paths if p.suffix in LANGUAGE and p.is_file()]


def parses(text: str, language: str) -> bool:
    if language == "python":  # tree-sitter accepts some bodies Python rejects
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            return False
    return file_parses(text, language)


def make_cases(path: Path) -> list[Case]:
    """Pairs of single-line statements of one function body, adjacent or one statement apart."""
    text, language = path.read_text(), LANGUAGE[path.suffix]
    tree = parse(text, language)
    if tree is None or not parses(text, language):
        return []
    data = text.encode("utf-8")
    cases = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type not in FUNCTIONS:
            continue
        body = next((c for c in node.children if c.type in BODIES), None)
        if body is None:
            continue
        statements = [
            c
            for c in body.named_children
            if c.type != "comment"
            and c.start_point.row == c.end_point.row
            and c.end_byte - c.start_byte <= MAX_STATEMENT_CHARS
        ]
        pairs = [
            (statements[i], statements[j])
            for i in range(len(statements))
            for j in (i + 1, i + 2)
            if j < len(statements)
        ]
        for a, b in pairs:
            if b.start_point.row - a.end_point.row > 2:
                continue
            spans = (
                (offset_of_byte(data, a.start_byte), offset_of_byte(data, a.end_byte)),
                (offset_of_byte(data, b.start_byte), offset_of_byte(data, b.end_byte)),
            )
            holed = text
            for s, e in reversed(spans):
                holed = holed[:s] + PLACEHOLDER[language] + holed[e:]
            truths = (text[slice(*spans[0])], text[slice(*spans[1])])
            cases.append(Case(str(path.relative_to(ROOT)), language, text, holed, truths, spans))
    return cases


def canvas_of(case: Case) -> MultiHoleCanvas | None:
    """The canvas of the function holding both holes (None if it has other placeholders too)."""
    for canvas in build_multihole_canvases(case.holed, case.language):
        if len(canvas.holes) == 2 and canvas.holes[0].start == case.spans[0][0]:
            return canvas
    return None


def fill_jointly(engine, canvas: MultiHoleCanvas, settings) -> tuple[list[str], int]:
    """One denoising pass: the wire's multi-hole request (model/multihole.py), the layout
    MultiHoleCanvas.request() documents. A unit whose segments do not fit fills nothing."""
    from diffgem_model.multihole import generate_holes

    from diffgem_protocol import GenerateParams

    result = generate_holes(
        engine,
        GenerateParams(
            prefix=canvas.prefix,
            suffix=canvas.suffix,
            segments=canvas.segments,
            hole_tokens=canvas.max_tokens,
            sampler=settings,
        ),
    )
    return (list(result.fills) if result.fills is not None else [""] * len(canvas.holes)), (
        result.forwards
    )


def fill_jointly_then_alone(engine, canvas: MultiHoleCanvas, settings) -> tuple[list[str], int]:
    """What the server does (edit_pipelines.fill_holes): the joint pass, then a plain infill for each
    hole whose joint fill the post-processing rejected."""
    fills, forwards = fill_jointly(engine, canvas, settings)
    kept = postprocess_multihole(canvas, list(fills)).filled
    for i in range(len(canvas.holes)):
        if not kept[i]:
            alone, spent = fill_one_at_a_time(engine, canvas, settings, only=i)
            fills[i], forwards = alone[i], forwards + spent
    return fills, forwards


def fill_one_at_a_time(
    engine, canvas: MultiHoleCanvas, settings, only: int | None = None
) -> tuple[list[str], int]:
    from diffgem_model.engine import GenerateParams

    fills, forwards = [], 0
    for i, hole in enumerate(canvas.holes):
        if only is not None and i != only:
            fills.append("")
            continue
        result = engine.generate(
            GenerateParams(
                prefix=canvas.text[: hole.start],
                suffix=canvas.text[hole.end :],
                max_tokens=engine.canvas_length,
                sampler=settings,
                seed=0,
            )
        )
        fills.append(result.text)
        forwards += result.forwards
    return fills, forwards


def judge(case: Case, canvas: MultiHoleCanvas, fills: list[str]) -> dict:
    """Parse rate and exact match of what the server would apply (post-processed fills)."""
    result = postprocess_multihole(canvas, list(fills))
    document = canvas.text[: canvas.unit_start] + result.new_text + canvas.text[canvas.unit_end :]
    exact = []
    for i in range(2):
        alone = postprocess_multihole(canvas, [f if j == i else None for j, f in enumerate(fills)])
        single = canvas.text[: canvas.unit_start] + alone.new_text + canvas.text[canvas.unit_end :]
        hole = canvas.holes[i]
        want = canvas.text[: hole.start] + case.truths[i] + canvas.text[hole.end :]
        exact.append(single == want)
    return {
        "parses": parses(document, case.language),
        "filled": sum(result.filled),
        "hole_exact": sum(exact),
        "both_exact": document == case.original,
    }


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    return {
        "cases": n,
        "parses": sum(r["parses"] for r in rows) / max(n, 1),
        "holes_filled": sum(r["filled"] for r in rows) / max(2 * n, 1),
        "hole_exact": sum(r["hole_exact"] for r in rows) / max(2 * n, 1),
        "both_exact": sum(r["both_exact"] for r in rows) / max(n, 1),
        "forwards_per_case": sum(r["forwards"] for r in rows) / max(n, 1),
        "ms_per_case": sum(r["ms"] for r in rows) / max(n, 1),
    }


def markdown(report: dict) -> str:
    out = [
        "# Multi-hole benchmark",
        "",
        f"`{report['command']}` on {report['machine']} (load average {report['load_average']}"
        f" at the start); checkpoint: {report['model']}.",
        "",
        "Two single-line statements of one function (adjacent, or one statement apart) are replaced by the",
        "language's placeholder (`raise NotImplementedError`, `throw new Error('TODO');`); files from",
        "bench/corpus and examples/",
        "(held out). *Jointly*: one canvas, the code between the holes pinned. *One at a time*: a plain",
        "infill per hole with the other placeholder in place. *Jointly, then alone*: what the server's",
        "Fill the holes does — the joint canvas, then a plain infill for each hole whose joint fill was",
        "rejected. All go through the server's post-processing (postprocess_multihole: cut, parse no",
        "worse); the document is judged after it.",
        "",
        "| method | language | cases | file parses | holes filled | hole exact | both exact | forwards | ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, rows in report["methods"].items():
        for language, r in rows.items():
            out.append(
                f"| {method} | {language} | {r['cases']} | {r['parses']:.1%} | {r['holes_filled']:.1%} "
                f"| {r['hole_exact']:.1%} | {r['both_exact']:.1%} | {r['forwards_per_case']:.1f} "
                f"| {r['ms_per_case']:.0f} |"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-cases", type=int, default=60)
    parser.add_argument("--languages", default="", help="comma-separated; default: all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/holes_results")
    args = parser.parse_args()

    engine, settings = load_engine(args.threads)  # the server's code-action sampler
    pairs = []
    wanted = set(filter(None, args.languages.split(",")))
    for path in corpus_files():
        if wanted and LANGUAGE[path.suffix] not in wanted:
            continue
        for case in make_cases(path):
            canvas = canvas_of(case)
            if canvas is not None:
                pairs.append((case, canvas))
    # Evenly spaced cases, the same share for each language (the corpus is mostly JavaScript by count).
    languages = sorted({case.language for case, _ in pairs})
    share = max(1, args.max_cases // max(1, len(languages)))
    picked = []
    for language in languages:
        mine = [p for p in pairs if p[0].language == language]
        picked += mine[:: max(1, len(mine) // share)][:share]
    pairs = picked
    methods = {
        "jointly (one canvas)": fill_jointly,
        "one at a time": fill_one_at_a_time,
        "jointly, then alone (server)": fill_jointly_then_alone,
    }
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    examples: list[dict] = []
    for case, canvas in pairs:
        for name, method in methods.items():
            t0 = time.perf_counter()
            fills, forwards = method(engine, canvas, settings)
            ms = (time.perf_counter() - t0) * 1000
            row = judge(case, canvas, fills) | {"forwards": forwards, "ms": ms}
            rows[name].append(row | {"language": case.language})
            if len(examples) < 30:
                examples.append(
                    {"path": case.path, "method": name, "truths": case.truths, "fills": fills}
                )
    report: dict = header("holes_eval.py", args.threads, engine) | {
        "methods": {},
        "examples": examples,
    }
    for name, method_rows in rows.items():
        table = {"all": summarize(method_rows)}
        for language in sorted({r["language"] for r in method_rows}):
            table[language] = summarize([r for r in method_rows if r["language"] == language])
        report["methods"][name] = table
    write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
