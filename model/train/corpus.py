"""Corpus builder: permissively licensed Python source on this machine, deduplicated, split by file.

Writes model/data/corpus.jsonl — one record per file with its origin, licence, content hash and split —
so that the model card can say exactly what the model was trained on. No benchmark data.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import re
import sysconfig
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
# Any copyleft term in a licence expression excludes the file, even beside a permissive one ("MPL-2.0 AND MIT"):
# the first shipped checkpoint saw 25 such files (tqdm) before this check existed (model card, "Data").
COPYLEFT = re.compile(r"\b(MPL|GPL|LGPL|AGPL|EPL|CDDL|copyleft)", re.I)
PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Unlicense|0BSD|Zlib|HPND)\b", re.I)
# Test suites and benchmark data are left out: tests are dominated by fixtures, and benchmark data
# (HumanEval, MBPP, ...) must never be training data.
EXCLUDED_PARTS = {"test", "tests", "testing", "idlelib", "lib2to3", "turtledemo", "__pycache__", "benchmarks"}
EXCLUDED_NAMES = re.compile(r"(humaneval|mbpp|apps_|codecontests)", re.I)
HELD_OUT_PERCENT = 3


def _licence(dist: md.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression") or ""
    if expression:
        return expression
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (meta.get("License") or "").strip().splitlines()
    return "; ".join(classifiers) or (text[0][:80] if text else "")


def _site_owners(site: Path) -> dict[str, tuple[str, str]]:
    """Top-level import name -> (distribution, licence) for installed packages."""
    owners: dict[str, tuple[str, str]] = {}
    for dist in md.distributions():
        name = dist.metadata.get("Name") or "?"
        licence = _licence(dist)
        for file in dist.files or []:
            top = str(file).split("/", 1)[0]
            if top.endswith(".py"):
                top = top[:-3]
            if not top.endswith((".dist-info", ".data")) and top not in owners:
                owners[top] = (name, licence)
    return owners


def iter_sources() -> list[tuple[Path, str, str]]:
    """(path, origin, licence) for every candidate file."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    found: list[tuple[Path, str, str]] = []
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" not in path.parts:
            found.append((path, f"cpython-stdlib:{path.relative_to(stdlib)}", "PSF-2.0"))
    owners = _site_owners(site)
    for path in sorted(site.rglob("*.py")):
        rel = path.relative_to(site)
        owner = owners.get(rel.parts[0].removesuffix(".py"))
        if owner is not None and not owner[0].startswith("diffgem"):
            found.append((path, f"pypi:{owner[0]}:{rel}", owner[1]))
    return found


def build(out: Path, min_bytes: int = 400, max_bytes: int = 120_000) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    counts = {"files": 0, "bytes": 0, "held_out": 0, "skipped_licence": 0, "duplicates": 0}
    licences: dict[str, int] = {}
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as sink:
        for path, origin, licence in iter_sources():
            if EXCLUDED_PARTS & set(path.parts) or EXCLUDED_NAMES.search(str(path)) or path.name.startswith("test_"):
                continue
            if not PERMISSIVE.search(licence) or COPYLEFT.search(licence):
                counts["skipped_licence"] += 1
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if not min_bytes <= len(text) <= max_bytes or "\x00" in text:
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in seen:
                counts["duplicates"] += 1
                continue
            seen.add(digest)
            # Split by file, from the content hash: stable across machines and runs.
            split = "held_out" if int(digest[:8], 16) % 100 < HELD_OUT_PERCENT else "train"
            counts["held_out"] += split == "held_out"
            counts["files"] += 1
            counts["bytes"] += len(text)
            licences[licence] = licences.get(licence, 0) + 1
            sink.write(json.dumps({"origin": origin, "licence": licence, "sha256": digest, "split": split, "text": text}) + "\n")
    summary = {**counts, "licences": dict(sorted(licences.items(), key=lambda kv: -kv[1]))}
    (out / "corpus_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def load(split: str, data: Path = DATA) -> list[dict]:
    with open(data / "corpus.jsonl", encoding="utf-8") as source:
        return [r for r in map(json.loads, source) if r["split"] == split]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=DATA)
    summary = build(parser.parse_args().out)
    print(json.dumps({k: v for k, v in summary.items() if k != "licences"}), "licences:", list(summary["licences"])[:8])
