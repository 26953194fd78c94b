"""Candidate dedup and ranking: empty and duplicate fills go, the best log-probability leads."""

from __future__ import annotations

import math

from diffgem_lsp.canvas.candidates import dedup_key, distinct_fraction, rank_candidates


def test_duplicates_and_empty_fills_are_removed_and_the_rest_ranked():
    ranked = rank_candidates(
        [
            ("return x", -0.9),
            ("", -0.1),
            (None, -0.05),
            ("return x  \n", -0.4),  # same fill, better score: its score is kept
            ("return x + 1", -0.6),
            ("   \n", -0.2),
        ],
        k=5,
    )
    assert [(c.text, c.mean_logprob, c.index) for c in ranked] == [
        ("return x  \n", -0.4, 0),
        ("return x + 1", -0.6, 4),
    ]


def test_k_caps_the_list_and_ties_keep_seed_order():
    ranked = rank_candidates([("a", -1.0), ("b", -1.0), ("c", -0.5), ("d", -2.0)], k=2)
    assert [c.text for c in ranked] == ["c", "a"]
    assert rank_candidates([("a", -1.0)], k=0) == []


def test_non_finite_scores_rank_last():
    ranked = rank_candidates([("a", math.nan), ("b", -3.0), ("c", math.inf)], k=3)
    assert [c.text for c in ranked] == ["c", "b", "a"]


def test_dedup_key_ignores_line_endings_and_trailing_space():
    assert dedup_key("x = 1\r\ny = 2  \r\n\n") == dedup_key("x = 1\ny = 2")
    assert dedup_key("x = 1") != dedup_key(" x = 1")  # leading indentation is meaningful


def test_distinct_fraction():
    assert distinct_fraction(["a", "a ", "b", None]) == 0.5
    assert distinct_fraction([]) == 0.0
