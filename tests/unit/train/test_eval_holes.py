"""Evaluation holes and judges: editor-cursor cuts, per-language parsing, edit similarity; corpus splits."""

from __future__ import annotations

import random
from pathlib import Path

from diffgem_model.train.corpus import Source, long_lines, split_of
from diffgem_model.train.holes import edit_similarity, multi_line_holes, parses, single_line_holes
from transformers import AutoTokenizer

PY = "import os\n\n\ndef total(values):\n    acc = 0\n    for v in values:\n        acc += compute_weight(v)\n    return acc\n"
GO = "package main\n\nfunc total(values []int) int {\n\tacc := 0\n\tfor _, v := range values {\n\t\tacc += v\n\t}\n\treturn acc\n}\n"


def test_editor_cursor_holes_cut_anywhere_including_mid_identifier(tiny_checkpoint):
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    rng = random.Random(0)
    holes = []
    for _ in range(30):
        holes += single_line_holes(PY, "x", "python", tok, rng, 32, 3, "editor")
    assert holes
    for h in holes:
        assert (
            h.prefix + h.middle + h.suffix == PY and "\n" not in h.middle and h.position == "editor"
        )
    # Some cursor rests inside an identifier: word characters on both sides of the cut.
    assert any(h.prefix[-1:].isalnum() and h.middle[:1].isalnum() for h in holes)


def test_block_holes_per_language(tiny_checkpoint):
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    for text, lang in ((PY, "python"), (GO, "go")):
        holes = multi_line_holes(text, "x", lang, tok, random.Random(1), 64, 5)
        assert holes, lang
        for h in holes:
            assert h.prefix + h.middle + h.suffix == text and "\n" in h.middle
            assert parses(text, lang) and not parses(h.prefix + "(((" + h.suffix, lang)


def test_edit_similarity():
    assert edit_similarity("abc", "abc") == 1.0 and edit_similarity("", "") == 1.0
    assert edit_similarity("abcd", "abed") == 0.75 and edit_similarity("", "ab") == 0.0


def test_splits_keep_whole_packages_and_never_hold_out_seen_code():
    seen = Source(Path("a.py"), "o", "MIT", "stdlib/json", "python", True)
    assert split_of(seen) == "train"
    splits = {
        split_of(Source(Path(f"{i}.py"), "o", "MIT", f"pkg{i}", "python", False))
        for i in range(200)
    }
    assert splits == {"train", "validation", "test"}
    same_pkg = {
        split_of(Source(Path(f"{i}.py"), "o", "MIT", "pkg7", "python", False)) for i in range(20)
    }
    assert len(same_pkg) == 1
    fetched_but_installed = Source(Path("n.py"), "o", "BSD", "networkx", "python", False)
    assert split_of(fetched_but_installed, frozenset({"networkx"})) == "train"


def test_overlap_counts_only_long_lines():
    a = "x = 1\nresult = compute_the_weighted_total(values, weights)\n"
    b = "y = 2\nresult = compute_the_weighted_total(values, weights)\n"
    assert long_lines(a) == long_lines(b) and len(long_lines(a)) == 1
