"""Tokenise a document that changed a little by re-tokenising only around the change.

Boundary: text -> token ids, identical to the tokenizer's own `tokenizer(text, add_special_tokens=False)`;
it keeps the last few texts it tokenised (in chunks) and never sees prompts, layouts or the model.

Why it is exact. A byte-level BPE tokenizer (GPT-2's pre-tokenizer regex, `tokenizers`' `ByteLevel` with
`use_regex`, optionally after `Digits`) merges only inside pre-tokens, and the regex
`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+` never matches across a
non-space character followed by a whitespace character: only the whitespace alternatives take whitespace
past their first character, and they take nothing else. So at such a position ("an anchor") a pre-token
ends and the next begins, and the pre-tokens on each side depend only on that side (no lookbehind; the one
lookahead, `(?!\\S)`, belongs to alternatives that cannot end at a non-space character). Hence
`ids(text) == ids(text[:s]) + ids(text[s:])` at every anchor `s`. Added (special) tokens are split out
before the regex; they cross no anchor as long as none contains whitespace or strips it. The anchors used
here are conservative (ASCII printable before, ASCII space/tab/newline/CR after) so that Python's and the
Rust regex's ideas of whitespace cannot differ. `supported()` checks the tokenizer has this structure;
anything else is tokenised whole, every time. tests/unit/test_incremental_tokens.py checks the result
against full tokenisation on edits of real files (inside multi-character tokens, unicode, CRLF, digits,
special-token text).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SAFE_BEFORE = frozenset(chr(c) for c in range(0x21, 0x7F))  # ASCII printable, not space
SAFE_AFTER = frozenset(" \t\n\r")
# A chunk is cut at the first line-end anchor at least this many characters in: a keystroke re-tokenises
# about one chunk (a few hundred characters) instead of the whole file.
CHUNK_CHARS = 256
MAX_ENTRIES = 8  # texts remembered: the prefix and the suffix of a few open documents


def is_anchor(text: str, s: int) -> bool:
    """True where tokenising text[:s] and text[s:] apart gives text's own tokens (see the docstring)."""
    if s <= 0 or s >= len(text):
        return True
    return text[s - 1] in SAFE_BEFORE and text[s] in SAFE_AFTER


def supported(tokenizer: Any) -> bool:
    """Whether this tokenizer has the structure that makes anchors exact (a `tokenizers` byte-level BPE)."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        return False
    spec = json.loads(backend.to_str())
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    *before, last = steps or [{}]
    byte_level = last.get("type") == "ByteLevel" and last.get("use_regex", True)
    byte_level = byte_level and not last.get("add_prefix_space", False)
    digits = all(step.get("type") == "Digits" for step in before)
    model = spec.get("model") or {}
    bpe = model.get("type") == "BPE" and not model.get("dropout")
    added = all(
        not any(ch.isspace() for ch in tok["content"])
        and not tok.get("lstrip")
        and not tok.get("rstrip")
        and not tok.get("single_word")
        for tok in spec.get("added_tokens", [])
    )
    return bool(spec.get("normalizer") is None and byte_level and digits and bpe and added)


@dataclass
class _Entry:
    text: str
    ends: list[int]  # chunk i covers text[ends[i-1]:ends[i]] (ends[-1] == len(text))
    ids: list[list[int]]  # the tokens of each chunk, tokenised alone

    def flat(self) -> list[int]:
        return [i for chunk in self.ids for i in chunk]


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice equality: C-speed compares, O(n log n) bytes
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def chunk_ends(text: str, start: int, end: int) -> list[int]:
    """Anchors cutting text[start:end] into chunks of about CHUNK_CHARS, ending with `end`."""
    ends = []
    pos = start
    while True:
        s = text.find("\n", pos + CHUNK_CHARS, end)
        while s != -1 and not is_anchor(text, s):
            s = text.find("\n", s + 1, end)
        if s == -1:
            break
        ends.append(s)
        pos = s
    ends.append(end)
    return ends


class IncrementalTokenizer:
    """`encode(text)` == `tokenizer(text, add_special_tokens=False).input_ids`, reusing earlier texts."""

    def __init__(self, tokenizer: Any, *, max_entries: int = MAX_ENTRIES):
        self.tokenizer = tokenizer
        self.enabled = supported(tokenizer)
        self.max_entries = max_entries
        self._entries: list[_Entry] = []  # most recent last
        self.reused_chars = 0
        self.tokenised_chars = 0

    def _full(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _batch(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        self.tokenised_chars += sum(map(len, texts))
        encodings = self.tokenizer._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [list(e.ids) for e in encodings]

    def encode(self, text: str) -> list[int]:
        if not self.enabled:
            return self._full(text)
        best: tuple[int, int, _Entry] | None = None
        for entry in self._entries:
            cp = _common_prefix(entry.text, text)
            cs = _common_suffix(entry.text, text, min(len(entry.text), len(text)) - cp)
            if best is None or cp + cs > best[0] + best[1]:
                best = (cp, cs, entry)
        entry = self._rebuild(text, best[2], best[0], best[1]) if best else self._fresh(text)
        self._remember(entry)
        return entry.flat()

    def _fresh(self, text: str) -> _Entry:
        ends = chunk_ends(text, 0, len(text))
        starts = [0, *ends[:-1]]
        return _Entry(
            text, ends, self._batch([text[a:b] for a, b in zip(starts, ends, strict=True)])
        )

    def _rebuild(self, text: str, old: _Entry, cp: int, cs: int) -> _Entry:
        """Keep old's chunks inside the common prefix and suffix; re-tokenise the span between them."""
        if old.text == text:
            return old
        delta = len(text) - len(old.text)
        # Left: chunks ending inside the shared prefix, at a position that is an anchor in the new text.
        left = 0
        while left < len(old.ends) and old.ends[left] <= cp and is_anchor(text, old.ends[left]):
            left += 1
        lo = old.ends[left - 1] if left else 0
        # Right: chunks starting inside the shared suffix, whose start shifted by delta is an anchor in
        # the new text and lies at or after `lo` (old chunks `right`.. are kept).
        right = len(old.ends)
        suffix_from = len(old.text) - cs
        while right - 1 >= max(left, 1):
            start = old.ends[right - 2]  # where chunk right-1 starts
            if start < suffix_from or start + delta < lo or not is_anchor(text, start + delta):
                break
            right -= 1
        hi = old.ends[right - 1] + delta if right < len(old.ends) else len(text)
        mid_ends = chunk_ends(text, lo, hi) if hi > lo else []
        mid_starts = [lo, *mid_ends[:-1]] if mid_ends else []
        mid_ids = self._batch([text[a:b] for a, b in zip(mid_starts, mid_ends, strict=True)])
        self.reused_chars += lo + (len(text) - hi)
        return _Entry(
            text,
            old.ends[:left] + mid_ends + [e + delta for e in old.ends[right:]],
            old.ids[:left] + mid_ids + old.ids[right:],
        )

    def _remember(self, entry: _Entry) -> None:
        self._entries = [e for e in self._entries if e is not entry][-(self.max_entries - 1) :]
        self._entries.append(entry)


def reusing(tokenizer: Any) -> Callable[[str], list[int]]:
    """An `encode` for prompt layouts: incremental where the tokenizer allows it, else the tokenizer's own."""
    return IncrementalTokenizer(tokenizer).encode
