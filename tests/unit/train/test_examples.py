"""Training examples: multi-hole canvases in the engine's layout, mid-token holes, the masked forward process."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffgem_model.train.examples import PAD_WEIGHT, FimSampler
from diffgem_model.train.objective import corrupt
from transformers import AutoTokenizer

from tests.conftest import stdlib_texts


@pytest.fixture(scope="module")
def tokens(tiny_checkpoint):
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    ids = [
        np.asarray(tok(t, add_special_tokens=False).input_ids, dtype=np.uint16)
        for t in stdlib_texts(12)
    ]
    starts = np.cumsum([0] + [len(x) for x in ids])
    return tok, np.concatenate(ids), starts


def _sampler(tiny_checkpoint, tokens, kinds: dict, canvas: int = 32) -> FimSampler:
    _tok, stream, starts = tokens
    s = FimSampler(stream, starts, tiny_checkpoint, canvas_length=canvas, seed=3)
    s.kinds, s.weights = list(kinds), np.ones(len(kinds)) / len(kinds)
    return s


def test_multi_hole_canvas_is_the_engines_layout(tiny_checkpoint, tokens):
    """Holes of b_i = (C - pinned - 1) // n free positions, the code between them pinned, EOS padding after each
    fill; prefix + fills + pinned segments + suffix rebuild the file (diffgem_lsp/canvas/multihole.py)."""
    tok, stream, starts = tokens
    s = _sampler(tiny_checkpoint, tokens, {"multi_hole": 1.0})
    eos = tok.eos_token_id
    seen_holes = 0
    for _ in range(40):
        prompt, canvas, start, _m, weight, pinned = s.example()
        assert (start == canvas).all() and (weight[pinned] == 0).all()
        runs = np.flatnonzero(np.diff(np.concatenate([[0], pinned.astype(int), [0]])))
        segments = list(zip(runs[::2], runs[1::2], strict=True))
        n_holes = len(segments) + 1
        assert n_holes >= 2
        width = (len(canvas) - int(pinned.sum()) - 1) // n_holes
        fills, pos = [], 0
        for i in range(n_holes):
            span = canvas[pos : pos + width].tolist()
            fill = span[: span.index(eos)]  # every hole keeps room for its EOS
            assert weight[pos : pos + len(fill) + 1].tolist() == [1.0] * (len(fill) + 1)
            fills.append(fill)
            pos += width
            if i < len(segments):
                a, b = segments[i]
                assert a == pos
                pos = b
        seen_holes += n_holes
        # Rebuild: the file's tokens = prefix, fill 0, segment 0, fill 1, ..., suffix.
        p = prompt.index(s.fim_prefix)
        suffix, prefix = prompt[2:p], prompt[p + 1 : -1]
        body = []
        for i, fill in enumerate(fills):
            body += fill
            if i < len(segments):
                body += canvas[segments[i][0] : segments[i][1]].tolist()
        joined = prefix + body + suffix
        hay = stream.tolist()
        assert any(
            hay[j : j + len(joined)] == joined
            for j in range(len(hay) - len(joined) + 1)
            if hay[j] == joined[0]
        )
    assert seen_holes >= 80


def test_char_hole_cuts_inside_a_token(tiny_checkpoint, tokens):
    tok, stream, starts = tokens
    s = _sampler(tiny_checkpoint, tokens, {"char": 1.0})
    text = tok.decode(stream.tolist())
    for _ in range(30):
        prompt, canvas, _start, m, weight, pinned = s.example()
        p = prompt.index(s.fim_prefix)
        prefix = tok.decode(prompt[p + 1 : -1])
        middle = tok.decode(canvas[:m].tolist())
        assert 0 < m < len(canvas) and canvas[m] == tok.eos_token_id and not pinned.any()
        assert weight[m] == 1.0 and (weight[m + 1 :] == PAD_WEIGHT).all()
        assert (prefix[-40:] + middle) in text


def test_masked_forward_process_never_moves_pinned_positions():
    start = torch.arange(64).view(2, 32) + 10
    pinned = torch.zeros(2, 32, dtype=torch.bool)
    pinned[:, 5:9] = True
    noisy, moved = corrupt(start, 100, torch.tensor([1.0, 0.5]), pinned, mask_id=0)
    assert not moved[pinned].any() and (noisy[pinned] == start[pinned]).all()
    assert (noisy[moved] == 0).all() and (noisy[~moved] == start[~moved]).all()
    assert moved[0, ~pinned[0]].all()  # t = 1 masks every free position
    uniform, moved_u = corrupt(start, 100, torch.tensor([1.0, 1.0]), pinned)
    assert moved_u[~pinned].all() and (uniform[pinned] == start[pinned]).all()
