"""Adaptive debounce: bounded, follows typing speed, a fixed setting wins."""

from __future__ import annotations

import pytest

from diffgem_lsp.debounce import MAX_MS, AdaptiveDebounce


def typed(gaps_s: list[float], **kwargs) -> AdaptiveDebounce:
    policy = AdaptiveDebounce(**kwargs)
    now = 100.0
    policy.observe(now)
    for gap in gaps_s:
        now += gap
        policy.observe(now)
    return policy


def test_no_typing_yet_means_no_wait():
    assert AdaptiveDebounce().delay_ms() == 0.0
    assert AdaptiveDebounce().due_s() is None


def test_fast_typing_waits_a_little_longer_than_the_typical_gap():
    policy = typed([0.06] * 10)
    assert policy.delay_ms() == pytest.approx(90.0)
    assert policy.due_s() == pytest.approx(100.6 + 0.09)


def test_slow_typing_does_not_wait():
    assert typed([0.3] * 10).delay_ms() == 0.0


def test_pauses_do_not_count_as_slow_typing():
    assert typed([0.06] * 5 + [5.0] + [0.06]).delay_ms() == pytest.approx(90.0)


def test_delay_is_bounded_and_tracks_speed_changes():
    policy = typed([0.05] * 10 + [0.095] * 20)
    assert 0.0 <= policy.delay_ms() <= MAX_MS
    assert policy.delay_ms() == pytest.approx(142.5, abs=1.0)
    faster = typed([0.095] * 20 + [0.04] * 20)
    assert faster.delay_ms() == pytest.approx(60.0, abs=1.0)


def test_fixed_setting_wins_and_is_clamped():
    assert typed([0.06] * 5, fixed_ms=40).delay_ms() == 40
    assert typed([0.06] * 5, fixed_ms=900).delay_ms() == MAX_MS
    assert typed([0.06] * 5, fixed_ms=-3).delay_ms() == 0.0


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        AdaptiveDebounce(min_ms=200, max_ms=100)


def test_no_wait_when_answers_come_back_before_the_next_key():
    policy = typed([0.06] * 10)
    policy.observe_request(45.0)  # a request answers in 45 ms, keys come every 60 ms
    assert policy.delay_ms() == 0.0
    slow = typed([0.06] * 10)
    for _ in range(5):
        slow.observe_request(200.0)  # answers take longer than the gaps: the wait saves work
    assert slow.delay_ms() == pytest.approx(90.0)
    assert typed([0.06] * 5, fixed_ms=40).request_ms is None  # a fixed setting ignores speeds
