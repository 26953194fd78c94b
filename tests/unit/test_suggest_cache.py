"""Suggestion cache: exact document states, typing through a shown suggestion, LRU bound."""

from __future__ import annotations

import pytest

from diffgem_lsp.suggest_cache import SuggestCache, Suggestion

URI = "file:///a.py"
TEXT = "def f(xs):\n    return \n"
CURSOR = TEXT.index("return ") + len("return ")


def typed(text: str, offset: int, chars: str) -> tuple[str, int]:
    return text[:offset] + chars + text[offset:], offset + len(chars)


def test_exact_state_is_a_hit_and_other_states_miss():
    cache = SuggestCache()
    assert cache.lookup(URI, TEXT, CURSOR) is None
    cache.store(URI, TEXT, CURSOR, [Suggestion("sum(xs)")])
    assert cache.lookup(URI, TEXT, CURSOR) == [Suggestion("sum(xs)")]
    assert cache.lookup("file:///b.py", TEXT, CURSOR) is None
    assert cache.lookup(URI, TEXT + "x", CURSOR) is None
    stats = cache.stats()
    assert (stats.exact_hits, stats.typed_through, stats.misses) == (1, 0, 3)


def test_typing_through_a_suggestion_answers_its_remainder_without_the_model():
    cache = SuggestCache()
    cache.store(URI, TEXT, CURSOR, [Suggestion("sum(xs)", 0), Suggestion("len(xs)", 0)])
    text, offset = TEXT, CURSOR
    remainders = []
    for ch in "sum(x":
        text, offset = typed(text, offset, ch)
        found = cache.lookup(URI, text, offset)
        assert found is not None
        remainders.append(found[0].insert_text)
    assert remainders == ["um(xs)", "m(xs)", "(xs)", "xs)", "s)"]
    assert cache.stats().typed_through == 5 and cache.stats().misses == 0
    # Backspace to a state seen before: an exact hit.
    assert cache.lookup(URI, *typed(TEXT, CURSOR, "sum")) == [Suggestion("(xs)")]


def test_a_character_that_diverges_or_an_edit_elsewhere_is_a_miss():
    cache = SuggestCache()
    cache.store(URI, TEXT, CURSOR, [Suggestion("sum(xs)")])
    assert cache.lookup(URI, *typed(TEXT, CURSOR, "x")) is None
    elsewhere = "# note\n" + TEXT
    assert cache.lookup(URI, *typed(elsewhere, CURSOR + 7, "s")) is None


def test_typing_the_whole_suggestion_leaves_nothing_to_show():
    cache = SuggestCache()
    cache.store(URI, TEXT, CURSOR, [Suggestion("x")])
    assert cache.lookup(URI, *typed(TEXT, CURSOR, "x")) is None


def test_replaced_characters_survive_typing_through():
    cache = SuggestCache()
    cache.store(URI, "print()\n", 6, [Suggestion("value)", replace_chars=1)])
    found = cache.lookup(URI, "print(v)\n", 7)
    # The auto-closed ")" after the cursor is still replaced by the remainder's own ")".
    assert found == [Suggestion("alue)", replace_chars=1)]


def test_lru_is_bounded_and_forget_drops_a_document():
    cache = SuggestCache(capacity=2)
    for i in range(3):
        cache.store(URI, TEXT + str(i), CURSOR, [Suggestion("a")])
    assert len(cache) == 2
    assert cache.lookup(URI, TEXT + "0", CURSOR) is None
    cache.forget(URI)
    assert len(cache) == 0
    with pytest.raises(ValueError):
        SuggestCache(capacity=0)
