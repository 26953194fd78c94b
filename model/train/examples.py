"""FIM training examples in the engine's `fim` layout, sampled on the fly from a tokenised corpus.

The corpus is tokenised once (`prepare`) into one token stream with file boundaries; `FimSampler` then
cuts editor-like holes at token boundaries — rest of line, whole line(s), expression, block body, an
empty middle, and edits whose starting canvas is a corrupted middle — and lays each example out exactly
as `diffgem_model.layouts.fim_prompt` does: `<bos><fim_suffix>suffix<fim_prefix>prefix<fim_middle>`, with
the canvas holding the middle padded with EOS.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from .corpus import DATA, load

# Mixture of hole kinds, as the editor asks for them (canvas.infill's hole kinds, plus edits and multi-hole
# canvases); "char" cuts holes mid-token, where an editor cursor can rest (issue 8: a cursor inside a word
# was out of distribution for the first checkpoint).
KINDS = {
    "rest_of_line": 0.3,
    "whole_line": 0.17,
    "expression": 0.13,
    "block": 0.13,
    "lines": 0.06,
    "empty": 0.03,
    "edit": 0.05,
    "multi_hole": 0.05,
    "char": 0.08,
}
# Loss weight of EOS padding after a hole's first EOS (the CPU pilot collapsed to "all EOS" without it).
PAD_WEIGHT = 0.1


def prepare(tokenizer_dir: Path, out: Path, split: str = "train", shard_tokens: int = 0) -> None:
    """Tokenise a whole corpus split into <name>_tokens.npy (uint16), _starts.npy (file offsets) and _weights.npy
    (sampling weight per file: generated code 0.25). With `shard_tokens`, train is cut into train_00, train_01, ...
    of about that many tokens each, so that one shard fits a GPU run's carry limit; shards cycle across runs."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    records = load(split)
    random.Random(0).shuffle(records)
    out.mkdir(parents=True, exist_ok=True)
    chunks: list[np.ndarray] = []
    weights: list[float] = []
    shard, starts, total, grand = 0, [0], 0, 0

    def flush(name: str) -> None:
        np.save(out / f"{name}_tokens.npy", np.concatenate(chunks))
        np.save(out / f"{name}_starts.npy", np.asarray(starts, dtype=np.int64))
        np.save(out / f"{name}_weights.npy", np.asarray(weights, dtype=np.float32))
        print(f"{name}: {len(chunks)} files, {total / 1e6:.1f}M tokens", flush=True)

    for i in range(0, len(records), 256):
        batch = records[i : i + 256]
        for r, ids in zip(
            batch, tok([r["text"] for r in batch], add_special_tokens=False).input_ids, strict=True
        ):
            chunks.append(np.asarray(ids, dtype=np.uint16))
            weights.append(r.get("weight", 1.0))
            total += len(ids)
            starts.append(total)
            if shard_tokens and total >= shard_tokens:
                flush(f"{split}_{shard:02d}")
                grand += total
                shard, chunks, starts, weights, total = shard + 1, [], [0], [], 0
    if chunks:
        flush(f"{split}_{shard:02d}" if shard_tokens else split)
    print(f"{split}: {(grand + total) / 1e6:.1f}M tokens in all")


@dataclass
class Batch:
    prompt: np.ndarray  # [B, Lp] right-padded with pad
    prompt_len: np.ndarray  # [B]
    canvas: np.ndarray  # [B, C] clean target (middle + EOS padding)
    start: (
        np.ndarray
    )  # [B, C] starting canvas before noise (== canvas, or a corrupted middle for edits)
    middle_len: np.ndarray  # [B]
    loss_weight: (
        np.ndarray
    )  # [B, C] 1 on middles and their first EOS, PAD_WEIGHT on padding, 0 where pinned
    pinned: np.ndarray  # [B, C] known code of a multi-hole canvas: never noised, never graded


class FimSampler:
    def __init__(
        self,
        tokens: np.ndarray,
        starts: np.ndarray,
        tokenizer_dir: Path,
        *,
        canvas_length: int,
        max_prefix: int = 320,
        max_suffix: int = 160,
        seed: int = 0,
        file_weights: np.ndarray | None = None,
    ):
        self.tokens, self.starts = tokens, starts
        tok = self.tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        vocab = tok.get_vocab()
        self.bos, self.eos, self.pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
        self.fim_prefix, self.fim_suffix, self.fim_middle = (
            vocab["<fim_prefix>"],
            vocab["<fim_suffix>"],
            vocab["<fim_middle>"],
        )
        self.vocab_size = len(tok)
        self.canvas_length, self.max_prefix, self.max_suffix = canvas_length, max_prefix, max_suffix
        strings = tok.convert_ids_to_tokens(list(range(len(tok))))
        # Per-vocabulary facts the span picker needs: does a token hold a newline, and how much
        # indentation follows it; does it end a block header (":"), open a call or an assignment.
        self.newline = np.array(["Ċ" in s for s in strings])
        self.indent_after = np.array(
            [len(s) - len(s.rstrip("Ġ")) if "Ċ" in s else 0 for s in strings]
        )
        self.opens_block = np.array([s.rstrip("Ġ").endswith(":") for s in strings])
        self.expr_start = np.array(
            [s.endswith(("(", "=", "[", ",")) or s in ("Ġ=", "Ġreturn") for s in strings]
        )
        self.rng = np.random.default_rng(seed)
        self.kinds = list(KINDS)
        self.weights = np.array(list(KINDS.values())) / sum(KINDS.values())
        self.big = np.flatnonzero(np.diff(starts) > 64)  # files worth cutting holes in
        # Per-file sampling weight (generated code down-weighted), proportional to the file's length otherwise.
        w = (
            np.diff(starts)[self.big].astype(np.float64)
            if file_weights is None
            else (np.diff(starts)[self.big] * np.asarray(file_weights, dtype=np.float64)[self.big])
        )
        self.file_cdf = np.cumsum(w / w.sum())

    def _span(self, a: int, b: int, kind: str) -> tuple[int, int] | None:
        """A hole [s, e) in the file tokens[a:b], or None if this file has no such hole here."""
        t, rng, nl = self.tokens, self.rng, self.newline
        limit = self.canvas_length - 1
        lines = a + np.flatnonzero(nl[t[a:b]])  # indices of newline tokens
        if len(lines) < 3:
            return None
        k = int(rng.integers(1, len(lines) - 1))
        line_start, line_end = (
            lines[k - 1] + 1,
            lines[k],
        )  # tokens of line k (after its newline token)
        if kind in ("whole_line", "edit", "lines", "block", "empty"):
            if kind == "lines":
                end = lines[min(len(lines) - 1, k + int(rng.integers(1, 4)))]
            elif kind == "block":
                if not self.opens_block[t[lines[k - 1] - 1]]:
                    header = np.flatnonzero(self.opens_block[t[lines[:-1] - 1]])
                    if len(header) == 0:
                        return None
                    k = int(rng.choice(header)) + 1
                    if k >= len(lines):
                        return None
                    line_start = lines[k - 1] + 1
                body = self.indent_after[t[lines[k - 1]]]
                j = k
                while j < len(lines) - 1 and self.indent_after[t[lines[j]]] >= body:
                    j += 1
                end = lines[j]
            else:
                end = line_end
            start = line_start
            if kind == "empty":
                return start, start
        else:
            inside = np.arange(line_start + 1, line_end)
            if len(inside) == 0:
                return None
            if kind == "expression":
                opens = inside[self.expr_start[t[inside - 1]]]
                if len(opens) == 0:
                    return None
                start = int(rng.choice(opens))
            else:
                start = int(rng.choice(inside))
            end = line_end
        if end - start > limit:
            return None
        return int(start), int(end)

    def _corrupt(self, middle: np.ndarray) -> np.ndarray:
        """An 'old version' of a middle for edit examples: token swaps, drops and duplicates."""
        out = list(middle)
        for _ in range(int(self.rng.integers(1, 4))):
            if not out:
                break
            i = int(self.rng.integers(0, len(out)))
            op = self.rng.integers(0, 3)
            if op == 0:
                out[i] = int(self.rng.integers(0, self.vocab_size))
            elif op == 1:
                del out[i]
            else:
                out.insert(i, out[i])
        return np.asarray(out[: self.canvas_length - 1], dtype=np.int64)

    def multi_hole(
        self, a: int, b: int
    ) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray] | None:
        """Several holes in a few consecutive lines, the code between them pinned: the canvas the engine builds
        for a function with several placeholders (diffgem_lsp/canvas/multihole.py): for each hole i, b_i free
        positions (its fill, then EOS padding), then segment i's tokens pinned; after the last hole, free EOS
        padding to the end; b_i = (C - pinned - 1) // holes. Returns (prompt, canvas, loss weight, pinned)."""
        t, rng, C = self.tokens, self.rng, self.canvas_length
        lines = a + np.flatnonzero(self.newline[t[a:b]])
        n_holes = int(rng.integers(2, 4))
        if len(lines) < n_holes + 3:
            return None
        k = int(rng.integers(1, len(lines) - n_holes - 1))
        spans = []
        for j in range(k, k + n_holes):  # one hole per line: a token boundary to the line's end
            s0, e0 = lines[j - 1] + 1, lines[j]
            if e0 - s0 < 1:
                return None
            spans.append((int(rng.integers(s0, e0)), int(e0)))
        segments = [t[spans[i][1] : spans[i + 1][0]] for i in range(n_holes - 1)]
        pinned_n = sum(len(seg) for seg in segments)
        width = (C - pinned_n - 1) // n_holes
        if width < 2 or any(e - s >= width for s, e in spans):
            return None
        canvas = np.full(C, self.eos, dtype=np.int64)
        weight = np.full(C, PAD_WEIGHT, dtype=np.float32)
        pinned = np.zeros(C, dtype=bool)
        pos = 0
        for i, (s, e) in enumerate(spans):
            canvas[pos : pos + e - s] = t[s:e]
            weight[pos : pos + e - s + 1] = 1.0  # the fill and its first EOS
            pos += width
            if i < n_holes - 1:
                seg = segments[i]
                canvas[pos : pos + len(seg)] = seg
                pinned[pos : pos + len(seg)] = True
                weight[pos : pos + len(seg)] = 0.0
                pos += len(seg)
        first, last = spans[0][0], spans[-1][1]
        prefix = t[max(a, first - self.max_prefix) : first]
        suffix = t[last : min(b, last + self.max_suffix)]
        prompt = [
            self.bos,
            self.fim_suffix,
            *suffix.tolist(),
            self.fim_prefix,
            *prefix.tolist(),
            self.fim_middle,
        ]
        return prompt, canvas, weight, pinned

    def example(self) -> tuple[list[int], np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
        """One example: (prompt, clean canvas, starting canvas, middle length, loss weight, pinned)."""
        while True:
            f = int(
                self.big[
                    min(len(self.big) - 1, int(np.searchsorted(self.file_cdf, self.rng.random())))
                ]
            )
            a, b = int(self.starts[f]), int(self.starts[f + 1])
            kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.weights))]
            if kind == "multi_hole":
                got = self.multi_hole(a, b)
                if got is None:
                    continue
                prompt, canvas, weight, pinned = got
                # middle_len (used by the probe and accuracy only) is the first hole's fill length.
                return (
                    prompt,
                    canvas,
                    canvas.copy(),
                    int(np.argmax(canvas == self.eos)),
                    weight,
                    pinned,
                )
            if kind == "char":
                got = self.char_hole(a, b)
                if got is None:
                    continue
                return got
            span = self._span(a, b, kind)
            if span is not None:
                break
        s, e = span
        t = self.tokens
        middle = t[s:e].astype(np.int64)
        prefix = t[max(a, s - self.max_prefix) : s]
        suffix = t[e : min(b, e + self.max_suffix)]
        prompt = [
            self.bos,
            self.fim_suffix,
            *suffix.tolist(),
            self.fim_prefix,
            *prefix.tolist(),
            self.fim_middle,
        ]
        canvas = np.full(self.canvas_length, self.eos, dtype=np.int64)
        canvas[: len(middle)] = middle
        start = canvas.copy()
        if kind == "edit":
            old = self._corrupt(middle)
            start = np.full(self.canvas_length, self.eos, dtype=np.int64)
            start[: len(old)] = old
        return (
            prompt,
            canvas,
            start,
            len(middle),
            self._weights(len(middle)),
            np.zeros(self.canvas_length, dtype=bool),
        )

    def _weights(self, middle_len: int) -> np.ndarray:
        weight = np.full(self.canvas_length, PAD_WEIGHT, dtype=np.float32)
        weight[: middle_len + 1] = 1.0
        return weight

    def char_hole(self, a: int, b: int):
        """A rest-of-line hole whose cursor sits inside a token: the token is split into its text's two halves,
        re-tokenised (the prefix ends in the first half, the middle starts with the second), as an editor
        cursor inside a word asks (evaluation's "editor" position)."""
        span = self._span(a, b, "rest_of_line")
        if span is None:
            return None
        s, e = span
        t = self.tokens
        text = self.tok.decode(t[s:e].tolist())
        if len(text) < 2:
            return None
        cut = int(self.rng.integers(1, len(text)))
        first, rest = text[:cut], text[cut:]
        head = self.tok(first, add_special_tokens=False).input_ids
        middle = np.asarray(self.tok(rest, add_special_tokens=False).input_ids, dtype=np.int64)
        if len(middle) > self.canvas_length - 1:
            return None
        prefix = [*t[max(a, s - self.max_prefix) : s].tolist(), *head][-self.max_prefix :]
        suffix = t[e : min(b, e + self.max_suffix)]
        prompt = [
            self.bos,
            self.fim_suffix,
            *suffix.tolist(),
            self.fim_prefix,
            *prefix,
            self.fim_middle,
        ]
        canvas = np.full(self.canvas_length, self.eos, dtype=np.int64)
        canvas[: len(middle)] = middle
        return (
            prompt,
            canvas,
            canvas.copy(),
            len(middle),
            self._weights(len(middle)),
            np.zeros(self.canvas_length, dtype=bool),
        )

    def batch(self, size: int) -> Batch:
        items = [self.example() for _ in range(size)]
        width = max(len(p) for p, *_ in items)
        prompt = np.full((size, width), self.pad, dtype=np.int64)
        for i, (p, *_rest) in enumerate(items):
            prompt[i, : len(p)] = p
        return Batch(
            prompt=prompt,
            prompt_len=np.array([len(p) for p, *_ in items]),
            canvas=np.stack([it[1] for it in items]),
            start=np.stack([it[2] for it in items]),
            middle_len=np.array([it[3] for it in items]),
            loss_weight=np.stack([it[4] for it in items]),
            pinned=np.stack([it[5] for it in items]),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "embedded",
        help="default: the shipped checkpoint's tokenizer (training continues from its weights)",
    )
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument(
        "--shard-tokens", type=int, default=0, help="cut the split into shards of ~N tokens"
    )
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    prepare(args.tokenizer, args.out, args.split, args.shard_tokens)
