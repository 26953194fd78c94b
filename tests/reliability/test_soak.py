"""A bounded typing soak against the real server and model: every request answered exactly once, memory flat.

Figures (answered/cancelled/errored, RSS) for longer runs come from `make bench` (bench/soak.py); here
only their invariants are asserted. Findings 5 and 10 of issue 14 (requests never answered, RSS growth).
"""

from __future__ import annotations

from .lsp_process import LspProcess
from .typing_soak import run_soak


def test_typing_soak_answers_every_request_once_and_memory_stays_flat(tmp_path):
    lsp = LspProcess(log=tmp_path / "server.log")
    try:
        figures = run_soak(lsp, keystrokes=240)
        assert lsp.exit() == 0
    finally:
        lsp.kill()
    print(figures.as_dict())
    assert figures.unanswered == 0 and figures.duplicated == 0, figures
    assert figures.errored == 0, figures
    assert figures.answered + figures.cancelled == figures.requests, figures
    assert figures.with_items > 0, figures  # the soak exercised the model, not only empty answers
    # Generous bounds: a leak per keystroke (pygls kept ~2.8 KB per notification) or an unbounded
    # cache shows as growth far beyond these over a warmed-up run.
    assert figures.server_rss_kb_end - figures.server_rss_kb_start < 8 * 1024, figures
    assert figures.worker_rss_kb_end - figures.worker_rss_kb_start < 96 * 1024, figures
