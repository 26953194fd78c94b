"""Several candidates for one hole: drop empty and duplicate fills, rank the rest by mean log-probability.

Pure: post-processed fill texts and scores in, an ordered short list out (no LSP types, no model). The
engine side (model/candidates.py) draws the K fills in one batched pass; this is what the server
shows of them, so that an editor cycling through suggestions (VS Code Alt+] / Alt+[) sees distinct ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RankedCandidate:
    text: str
    mean_logprob: float  # mean log-probability of the fill's tokens (higher is better)
    index: int  # position among the candidates given (the seed order), for stable ties


def dedup_key(text: str) -> str:
    """What makes two fills the same to a reader: the text without trailing whitespace on any line
    nor blank lines at its ends (a fill that differs only there is not a new suggestion)."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")


def rank_candidates(
    candidates: Iterable[tuple[str | None, float]], k: int
) -> list[RankedCandidate]:
    """At most `k` distinct, non-empty fills, best mean log-probability first.

    `candidates` are (post-processed fill or None, mean log-probability) in seed order. Among
    duplicates the best-scored copy stays. A NaN score (the mean of no tokens) ranks
    last; equal scores keep seed order, so seed 0 — what an automatic request shows — leads ties.
    """
    if k < 1:
        return []
    best: dict[str, RankedCandidate] = {}
    for index, (text, score) in enumerate(candidates):
        if text is None or not text.strip():
            continue
        key = dedup_key(text)
        score = -math.inf if math.isnan(score) else float(score)
        held = best.get(key)
        if held is None or score > held.mean_logprob:
            best[key] = RankedCandidate(text, score, index if held is None else held.index)
    ranked = sorted(best.values(), key=lambda c: (-c.mean_logprob, c.index))
    return ranked[:k]


def distinct_fraction(texts: list[str | None]) -> float:
    """Distinct non-empty fills over all fills (1.0: every seed gave something new), a diversity
    figure for benchmarks."""
    if not texts:
        return 0.0
    kept = [dedup_key(t) for t in texts if t is not None and t.strip()]
    return len(set(kept)) / len(texts)
