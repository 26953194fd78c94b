"""Incremental tokenisation gives exactly the full tokenisation's ids, for every kind of edit.

Boundary: model/incremental_tokens.py against the embedded checkpoint's own tokenizer (no model weights).
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest
from diffgem_model import EMBEDDED_CHECKPOINT
from diffgem_model.incremental_tokens import (
    CHUNK_CHARS,
    IncrementalTokenizer,
    chunk_ends,
    is_anchor,
    supported,
)
from transformers import AutoTokenizer

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TRICKY = [
    "é",
    "😀",
    "中文字符",
    "\u00a0",
    "\x1c",
    "\u2028",
    "\u3000",
    "\r\n",
    "\r",
    "\t",
    "  ",
    "\n\n",
    "1234",
    "x1",
    "<fim_prefix>",
    "<bos>",
    "<eos> ",
    "'s",
    "it's",
    " \n",
]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED_CHECKPOINT)


def full(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def test_the_embedded_tokenizer_is_supported(tokenizer):
    assert supported(tokenizer)
    assert IncrementalTokenizer(tokenizer).enabled


def test_tokens_split_at_every_anchor(tokenizer):
    """The property the module rests on: ids(text) == ids(text[:s]) + ids(text[s:]) at an anchor."""
    rng = random.Random(0)
    text = (STDLIB / "textwrap.py").read_text()[:3000] + "".join(TRICKY) + "x = 1\r\n  y<bos> z\n"
    anchors = [s for s in range(1, len(text)) if is_anchor(text, s)]
    assert len(anchors) > 300
    ids = full(tokenizer, text)
    for s in rng.sample(anchors, 150):
        assert full(tokenizer, text[:s]) + full(tokenizer, text[s:]) == ids, repr(
            text[s - 5 : s + 5]
        )


def test_chunks_are_cut_at_anchors(tokenizer):
    text = (STDLIB / "shlex.py").read_text()
    ends = chunk_ends(text, 0, len(text))
    assert ends[-1] == len(text) and len(ends) > 10
    assert all(
        is_anchor(text, e) and e - s >= CHUNK_CHARS
        for s, e in zip([0, *ends[:-2]], ends[:-1], strict=True)
    )


def test_typing_a_file_back_reuses_and_matches(tokenizer):
    """Prefix and suffix of a cursor typing a real file back, as the worker sees them per keystroke."""
    text = (STDLIB / "textwrap.py").read_text()
    inc = IncrementalTokenizer(tokenizer)
    row = text.index("def wrap(")
    for cut in range(row, row + 120, 3):
        assert inc.encode(text[:cut]) == full(tokenizer, text[:cut])
        assert inc.encode(text[cut:]) == full(tokenizer, text[cut:])
    # The path ran: most characters came from earlier texts, a few hundred per keystroke were re-read.
    assert inc.reused_chars > 20 * inc.tokenised_chars / 10
    assert inc.tokenised_chars < 40 * len(text) / 10


@pytest.mark.parametrize("insert", TRICKY + ["wrap", "ping", "\n    return x\n", "X"])
def test_edits_inside_tokens_unicode_crlf_and_special_text(tokenizer, insert):
    rng = random.Random(hash(insert) & 0xFFFF)
    base = (STDLIB / "textwrap.py").read_text()[:6000]
    inc = IncrementalTokenizer(tokenizer)
    assert inc.encode(base) == full(tokenizer, base)
    text = base
    for _ in range(25):
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.3 and at < len(text):
            text = text[:at] + text[at + rng.randint(1, 6) :]  # a deletion, maybe across a token
        else:
            text = text[:at] + insert + text[at:]  # often inside a multi-character token
        assert inc.encode(text) == full(tokenizer, text), repr(text[max(0, at - 8) : at + 8])


def test_crlf_document_typed_char_by_char(tokenizer):
    text = (STDLIB / "shlex.py").read_text()[:4000].replace("\n", "\r\n")
    inc = IncrementalTokenizer(tokenizer)
    mid = text.index("class shlex")
    for cut in range(mid - 40, mid + 60):
        assert inc.encode(text[:cut]) == full(tokenizer, text[:cut])


def test_special_token_text_typed_one_char_at_a_time(tokenizer):
    head = (STDLIB / "bisect.py").read_text()[:2000]
    inc = IncrementalTokenizer(tokenizer)
    for word in ("<fim_prefix>", "<bos>"):
        for n in range(len(word) + 1):
            text = head + "\nx = '" + word[:n]
            ids = inc.encode(text)
            assert ids == full(tokenizer, text)
        assert tokenizer.convert_tokens_to_ids(word) in ids  # the special token did form


def test_random_edits_across_documents(tokenizer):
    rng = random.Random(7)
    docs = [(STDLIB / name).read_text()[:8000] for name in ("glob.py", "fnmatch.py", "colorsys.py")]
    inc = IncrementalTokenizer(tokenizer, max_entries=4)
    for _ in range(150):
        i = rng.randrange(len(docs))
        text = docs[i]
        at, span = rng.randrange(len(text) + 1), rng.randint(0, 40)
        docs[i] = (
            text[:at]
            + rng.choice(TRICKY + ["a", " ", "\n", "()"]) * rng.randint(0, 3)
            + text[at + span :]
        )
        assert inc.encode(docs[i]) == full(tokenizer, docs[i])
    assert inc.encode("") == full(tokenizer, "") == []


def test_unsupported_tokenizers_are_tokenised_whole():
    class Plain:
        def __call__(self, text, add_special_tokens=False):
            class Out:
                input_ids = [ord(c) for c in text]

            return Out()

    inc = IncrementalTokenizer(Plain())
    assert not inc.enabled
    assert inc.encode("ab c") == [97, 98, 32, 99]


def test_fim_prompts_are_identical_with_reuse(tokenizer):
    """The engine's path: fim_prompt with the incremental encode builds the very same prompt."""
    from diffgem_model.layouts import fim_prompt

    text = (STDLIB / "textwrap.py").read_text()
    inc = IncrementalTokenizer(tokenizer)
    cursor = text.index("def fill(")
    for n in range(60):  # type the line back, a space included (token healing), then delete some
        cut = cursor + n if n < 40 else cursor + 80 - n
        typed = text[:cut]
        reused = fim_prompt(tokenizer, typed, text[cursor:], canvas_length=32, encode=inc.encode)
        assert reused == fim_prompt(tokenizer, typed, text[cursor:], canvas_length=32)
    assert inc.reused_chars > inc.tokenised_chars
