"""Repair benchmark: files broken by one small random edit, repaired by the model vs two trivial baselines.

Drives the engine in-process (diffgem_model.engine, the embedded checkpoint) through the server's own
pure repair canvas (diffgem_lsp.canvas.repair); no LSP. Held-out inputs only: bench/corpus and examples/
(not training data). Writes bench/repair_results.json and bench/repair_results.md; asserts nothing.

    .venv/bin/python bench/repair_eval.py [--per-file 12] [--seeds 4]
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_common import header, load_engine, write_report  # noqa: E402
from diffgem_lsp.canvas.repair import (  # noqa: E402
    build_repair_canvases,
    check_repair,
    file_parses,
    repair_cuts,
    splice_line_fill,
    syntax_faults,
)

LANGUAGE = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go", ".rs": "rust"}
# Characters a slip of the keyboard inserts or deletes most visibly in code.
PUNCTUATION = "()[]{}:;,.=\"'"
TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Broken:
    path: str
    language: str
    original: str
    broken: str
    how: str  # "delete_char" | "delete_token" | "insert_char" | "duplicate_token"
    line: int  # the line the edit touched


def corpus_files() -> list[Path]:
    paths = sorted((ROOT / "bench/corpus").glob("*")) + sorted((ROOT / "examples").rglob("*"))
    return [p for p in paths if p.suffix in LANGUAGE and p.is_file()]


def really_broken(text: str, language: str) -> bool:
    """tree-sitter sees the damage (Python: and the compiler agrees), so a repair has something to do."""
    if file_parses(text, language):
        return False
    if language == "python":
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            return True
        return False
    return True


def break_file(path: Path, rng: random.Random, count: int) -> list[Broken]:
    """`count` distinct single-edit breakages of a file that parses."""
    text, language = path.read_text(), LANGUAGE[path.suffix]
    if not file_parses(text, language):
        return []
    lines = text.split("\n")
    code_lines = [
        i
        for i, line in enumerate(lines)
        if line.strip() and not line.strip().startswith(("#", "//"))
    ]
    out: dict[str, Broken] = {}
    for _ in range(count * 20):
        if len(out) >= count:
            break
        i = rng.choice(code_lines)
        line = lines[i]
        tokens = [m for m in TOKEN.finditer(line)]
        how = rng.choice(["delete_char", "delete_token", "insert_char", "duplicate_token"])
        if how == "delete_char":
            spots = [j for j, ch in enumerate(line) if not ch.isspace()]
            j = rng.choice(spots)
            new = line[:j] + line[j + 1 :]
        elif how == "delete_token":
            m = rng.choice(tokens)
            new = line[: m.start()] + line[m.end() :]
        elif how == "insert_char":
            j = rng.randrange(len(line) - len(line.lstrip()), len(line) + 1)
            new = line[:j] + rng.choice(PUNCTUATION) + line[j:]
        else:
            m = rng.choice(tokens)
            new = line[: m.end()] + " " + m.group() + line[m.end() :]
        broken = "\n".join(lines[:i] + [new] + lines[i + 1 :])
        if broken not in out and really_broken(broken, language):
            out[broken] = Broken(str(path.relative_to(ROOT)), language, text, broken, how, i)
    return list(out.values())


def delete_broken_line(case: Broken) -> str:
    """Baseline: delete the line of the first syntax fault tree-sitter reports."""
    faults = syntax_faults(case.broken, case.language)
    line = case.broken.count("\n", 0, faults[0].start) if faults else case.line
    lines = case.broken.split("\n")
    return "\n".join(lines[:line] + lines[line + 1 :])


def model_repair(engine, case: Broken, seeds: int, settings) -> tuple[str, int]:
    """The server's repair (diffgem_lsp.edit_pipelines.repair) with the engine in-process: for the
    first fault's canvas, rest-of-line infills at the cuts canvas.repair.repair_cuts proposes, then
    the edit canvas from its current text with up to `seeds` seeds; the first candidate the server's
    check keeps wins. Returns the document and the forwards spent."""
    from diffgem_model.engine import GenerateParams

    from diffgem_lsp.canvas.infill import MAX_TOKENS

    document, forwards = case.broken, 0
    canvases = build_repair_canvases(document, case.language)
    if not canvases:
        return document, 0
    canvas = canvases[0]
    for cut in repair_cuts(document, canvas):
        line_end = document.find("\n", cut)
        line_end = len(document) if line_end < 0 else line_end
        result = engine.generate(
            GenerateParams(
                prefix=document[:cut],
                suffix=document[line_end:],
                max_tokens=MAX_TOKENS["line"],
                sampler=settings,
                seed=0,
            )
        )
        forwards += result.forwards
        kept = check_repair(canvas, splice_line_fill(document, canvas, cut, result.text))
        if kept is not None:
            return canvas.prefix + kept + canvas.suffix, forwards
    for seed in range(seeds):
        result = engine.generate(
            GenerateParams(
                prefix=canvas.prefix,
                suffix=canvas.suffix,
                old_text=canvas.original,
                max_tokens=max(64, len(canvas.original)),
                sampler=settings,
                seed=seed,
            )
        )
        forwards += result.forwards
        kept = check_repair(canvas, result.text) if result.finished else None
        if kept is not None:
            return canvas.prefix + kept + canvas.suffix, forwards
    return document, forwards


def score(cases: list[Broken], documents: list[str]) -> dict:
    n = len(cases)
    parses = sum(
        really_broken(d, c.language) is False and file_parses(d, c.language)
        for c, d in zip(cases, documents, strict=True)
    )
    exact = sum(d == c.original for c, d in zip(cases, documents, strict=True))
    return {"n": n, "parses": parses / max(n, 1), "parses_and_matches": exact / max(n, 1)}


def markdown(report: dict) -> str:
    out = [
        "# Repair benchmark",
        "",
        f"`{report['command']}` on {report['machine']}; checkpoint: {report['model']}.",
        "",
        "Files from bench/corpus and examples/ (held out: not training data), each broken by one random",
        "small edit (a character or token deleted, a punctuation character inserted, a token duplicated)",
        "that tree-sitter (and, for Python, `ast`) rejects. *Repaired* = the whole file parses and equals",
        "the original. The model runs the server's repair (diffgem_lsp/edit_pipelines.py): rest-of-line",
        "infills at the faulty line's end and last tokens (canvas.repair.repair_cuts), then the repair",
        "canvas (smallest enclosing statement, from its current text) with up to "
        f"{report['seeds']} seeds; the first candidate the server's check accepts (fewer faults, none",
        "left in the region, most of the text kept) is applied.",
        "",
        "| system | language | n | file parses | parses and matches original |",
        "|---|---|---|---|---|",
    ]
    for system, rows in report["systems"].items():
        for language, r in rows.items():
            out.append(
                f"| {system} | {language} | {r['n']} | {r['parses']:.1%} | {r['parses_and_matches']:.1%} |"
            )
    out += [
        "",
        f"Model: {report['forwards_per_case']:.1f} forwards per case (median), "
        f"{report['seconds']:.0f} s in all.",
        "",
    ]
    by_how = report["model_by_edit"]
    out += ["| breakage | n | model: parses and matches |", "|---|---|---|"]
    out += [f"| {how} | {r['n']} | {r['parses_and_matches']:.1%} |" for how, r in by_how.items()]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/repair_results")
    args = parser.parse_args()

    rng = random.Random(0)
    cases = [c for path in corpus_files() for c in break_file(path, rng, args.per_file)]
    engine, settings = load_engine(args.threads)  # the server's code-action sampler
    t0 = time.perf_counter()
    repaired, forwards = [], []
    for case in cases:
        document, spent = model_repair(engine, case, args.seeds, settings)
        repaired.append(document)
        forwards.append(spent)
    seconds = time.perf_counter() - t0
    systems = {
        "model (repair canvas)": repaired,
        "baseline: delete the broken line": [delete_broken_line(c) for c in cases],
        "baseline: do nothing": [c.broken for c in cases],
    }
    languages = sorted({c.language for c in cases})
    report: dict = header("repair_eval.py", args.threads, engine) | {
        "seeds": args.seeds,
        "seconds": seconds,
        "forwards_per_case": statistics.median(forwards) if forwards else 0.0,
        "systems": {},
    }
    for name, documents in systems.items():
        rows = {"all": score(cases, documents)}
        for language in languages:
            pick = [i for i, c in enumerate(cases) if c.language == language]
            rows[language] = score([cases[i] for i in pick], [documents[i] for i in pick])
        report["systems"][name] = rows
    report["model_by_edit"] = {
        how: score(
            [c for c in cases if c.how == how],
            [d for c, d in zip(cases, repaired, strict=True) if c.how == how],
        )
        for how in sorted({c.how for c in cases})
    }
    report["examples"] = [
        {
            "path": c.path,
            "how": c.how,
            "line": c.line,
            "broken": c.broken.split("\n")[c.line],
            "repaired": d == c.original,
        }
        for c, d in list(zip(cases, repaired, strict=True))[:40]
    ]
    write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
