"""Suggestion cache: answers keyed by document state, and typing-through a suggestion already shown.

Pure and synchronous (no LSP types, no model, no clock): the inline-completion handler asks `lookup`
before the model and `store`s what the model answered. Typing-through (Tabby's and Copilot's
behaviour): while the user types characters that match the shown suggestion, its remainder is the
answer — the model is not asked again until the user leaves it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_CAPACITY = 256


@dataclass(frozen=True)
class Suggestion:
    insert_text: str
    # Characters after the cursor, on its line, that the suggestion replaces (an auto-closed ")").
    replace_chars: int = 0


@dataclass(frozen=True)
class CacheStats:
    exact_hits: int
    typed_through: int
    misses: int

    @property
    def answered(self) -> float:
        """Fraction of lookups answered without the model."""
        total = self.exact_hits + self.typed_through + self.misses
        return (self.exact_hits + self.typed_through) / total if total else 0.0


def _digest(text: str) -> bytes:
    # blake2b: a collision would show a stale suggestion, so a 128-bit digest, not Python's hash().
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class _Shown:
    """A suggestion as shown at a cursor: the document before and after the cursor, by digest."""

    uri: str
    offset: int  # str offset of the cursor when the suggestion was made
    before: bytes  # digest of text[:offset]
    after: bytes  # digest of text[offset:]
    suggestions: tuple[Suggestion, ...]


class SuggestCache:
    """An LRU of suggestions keyed by (uri, document digest, cursor offset), plus, per document, the
    last suggestions shown, for typing-through. `capacity` bounds the LRU's entries."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, bytes, int], tuple[Suggestion, ...]] = OrderedDict()
        self._shown: dict[str, _Shown] = {}
        self._hits = self._through = self._misses = 0

    def store(self, uri: str, text: str, offset: int, suggestions: list[Suggestion]) -> None:
        """Remember the model's answer for this document state; it becomes the one shown."""
        kept = tuple(s for s in suggestions if s.insert_text)
        key = (uri, _digest(text), offset)
        self._entries[key] = kept
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        if kept:
            before, after = _digest(text[:offset]), _digest(text[offset:])
            self._shown[uri] = _Shown(uri, offset, before, after, kept)
        else:
            self._shown.pop(uri, None)

    def lookup(self, uri: str, text: str, offset: int) -> list[Suggestion] | None:
        """Suggestions for this document state without the model, or None (ask the model).

        An exact state seen before answers from the LRU. Otherwise, if the text between the shown
        suggestion's cursor and this cursor was typed and matches the start of a shown suggestion
        (and nothing else in the document changed), the remainders of the matching ones answer.
        """
        key = (uri, _digest(text), offset)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self._hits += 1
            return list(found)
        through = self._type_through(uri, text, offset)
        if through is None:
            self._misses += 1
            return None
        self._through += 1
        # The remainder is now the suggestion shown at this state: the next keystroke types through
        # it in turn, and returning to this state is an exact hit.
        self.store(uri, text, offset, through)
        return through

    def _type_through(self, uri: str, text: str, offset: int) -> list[Suggestion] | None:
        shown = self._shown.get(uri)
        if shown is None or offset <= shown.offset or offset > len(text):
            return None
        typed = text[shown.offset : offset]
        if "\n" in typed and typed.strip() == "":
            return None  # an Enter on its own is a new request, not agreement
        if _digest(text[: shown.offset]) != shown.before or _digest(text[offset:]) != shown.after:
            return None
        rest = [
            Suggestion(s.insert_text[len(typed) :], s.replace_chars)
            for s in shown.suggestions
            if s.insert_text.startswith(typed) and len(s.insert_text) > len(typed)
        ]
        return rest or None

    def forget(self, uri: str) -> None:
        """Drop a closed document's entries."""
        self._shown.pop(uri, None)
        for key in [k for k in self._entries if k[0] == uri]:
            del self._entries[key]

    def stats(self) -> CacheStats:
        return CacheStats(self._hits, self._through, self._misses)

    def __len__(self) -> int:
        return len(self._entries)
