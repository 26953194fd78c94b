"""Adaptive debounce: how long an automatic request waits, from the user's recent typing speed.

A pure policy object: the caller feeds it keystroke times (seconds, any monotonic clock) and asks for
a delay; it never sleeps, schedules or cancels. A scheduler (e.g. supersede-first: start at once, let
the next keystroke cancel) may use `delay_ms` as its grace period or ignore it.

Why this shape: a request fired mid-burst is superseded by the next keystroke and its work wasted;
a request delayed after the burst ends is latency the user sees. So wait a little longer than the
user's typical gap between keys while they type fast — if no key comes by then, the burst is over —
and not at all when their gaps are longer than the cap: the next key is not coming soon, waiting
cannot save a model call. Nor when keys come slower than answers (`observe_request`): a request that
finishes before the next key is due is never superseded, so a wait would be pure latency (issue 15:
supersede-first; a newer keystroke cancels the request at its next denoising step anyway). Issue 12
names Tabby's adaptive debounce as the anchor; this policy is our own, and its bounds keep it
predictable.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_MS = 0.0
MAX_MS = 150.0
# Gaps longer than this are pauses (reading, thinking), not typing speed: they reset nothing but are
# left out of the average, or one pause would make a fast typist look slow.
PAUSE_S = 1.0
# Weight of the newest gap in the exponential moving average (about the last 5 gaps count).
ALPHA = 0.3
# Wait this much longer than the typical gap: most next keys in a burst arrive within 1.5x the mean.
MARGIN = 1.5


@dataclass
class AdaptiveDebounce:
    """Delay for the next automatic request, bounded to [min_ms, max_ms].

    With `fixed_ms` set (the user's setting) the delay is that value, clamped, and typing is ignored.
    """

    min_ms: float = MIN_MS
    max_ms: float = MAX_MS
    fixed_ms: float | None = None
    mean_gap_s: float | None = None  # moving average of gaps between keystrokes while typing
    last_key_s: float | None = None
    request_ms: float | None = None  # moving average of how long an answered request took

    def __post_init__(self) -> None:
        if not 0 <= self.min_ms <= self.max_ms:
            raise ValueError(f"need 0 <= min_ms <= max_ms, got {self.min_ms}, {self.max_ms}")

    def observe(self, now_s: float) -> None:
        """Record a keystroke (a document change) at time `now_s`."""
        if self.last_key_s is not None:
            gap = now_s - self.last_key_s
            if 0 <= gap <= PAUSE_S:
                if self.mean_gap_s is None:
                    self.mean_gap_s = gap
                else:
                    self.mean_gap_s = ALPHA * gap + (1 - ALPHA) * self.mean_gap_s
        self.last_key_s = now_s

    def observe_request(self, elapsed_ms: float) -> None:
        """Record how long a request took from its start to its answer (debounce excluded)."""
        if self.request_ms is None:
            self.request_ms = elapsed_ms
        else:
            self.request_ms = ALPHA * elapsed_ms + (1 - ALPHA) * self.request_ms

    def delay_ms(self) -> float:
        """How long to wait after the latest keystroke before asking the model."""
        if self.fixed_ms is not None:
            return min(self.max_ms, max(self.min_ms, self.fixed_ms))
        if self.mean_gap_s is None:
            return self.min_ms  # no typing seen yet: an isolated edit, answer at once
        if self.request_ms is not None and self.mean_gap_s * 1000 >= self.request_ms:
            return self.min_ms  # answers beat the next key: nothing to save by waiting
        wait = MARGIN * self.mean_gap_s * 1000
        if wait > self.max_ms:
            return (
                self.min_ms
            )  # slow typing: the next key is not coming soon, waiting saves nothing
        return max(self.min_ms, wait)

    def due_s(self) -> float | None:
        """When a request for the latest keystroke should start (None before any keystroke)."""
        if self.last_key_s is None:
            return None
        return self.last_key_s + self.delay_ms() / 1000
