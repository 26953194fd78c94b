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

# Mixture of hole kinds, as the editor asks for them (canvas.infill's hole kinds, plus edits).
KINDS = {"rest_of_line": 0.35, "whole_line": 0.2, "expression": 0.15, "block": 0.15, "lines": 0.07, "empty": 0.03, "edit": 0.05}


def prepare(tokenizer_dir: Path, out: Path, split: str = "train", max_tokens: int = 0) -> None:
    """Tokenise a corpus split into tokens.npy (uint16) + starts.npy (file start offsets)."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    records = load(split)
    random.Random(0).shuffle(records)
    chunks, starts, total = [], [0], 0
    for i in range(0, len(records), 256):
        batch = [r["text"] for r in records[i : i + 256]]
        for ids in tok(batch, add_special_tokens=False).input_ids:
            chunks.append(np.asarray(ids, dtype=np.uint16))
            total += len(ids)
            starts.append(total)
        if max_tokens and total >= max_tokens:
            break
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"{split}_tokens.npy", np.concatenate(chunks))
    np.save(out / f"{split}_starts.npy", np.asarray(starts, dtype=np.int64))
    print(f"{split}: {len(chunks)} files, {total / 1e6:.1f}M tokens")


@dataclass
class Batch:
    prompt: np.ndarray  # [B, Lp] right-padded with pad
    prompt_len: np.ndarray  # [B]
    canvas: np.ndarray  # [B, C] clean target (middle + EOS padding)
    start: np.ndarray  # [B, C] starting canvas before noise (== canvas, or a corrupted middle for edits)
    middle_len: np.ndarray  # [B]


class FimSampler:
    def __init__(self, tokens: np.ndarray, starts: np.ndarray, tokenizer_dir: Path, *, canvas_length: int,
                 max_prefix: int = 320, max_suffix: int = 160, seed: int = 0):
        self.tokens, self.starts = tokens, starts
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        vocab = tok.get_vocab()
        self.bos, self.eos, self.pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
        self.fim_prefix, self.fim_suffix, self.fim_middle = vocab["<fim_prefix>"], vocab["<fim_suffix>"], vocab["<fim_middle>"]
        self.vocab_size = len(tok)
        self.canvas_length, self.max_prefix, self.max_suffix = canvas_length, max_prefix, max_suffix
        strings = tok.convert_ids_to_tokens(list(range(len(tok))))
        # Per-vocabulary facts the span picker needs: does a token hold a newline, and how much
        # indentation follows it; does it end a block header (":"), open a call or an assignment.
        self.newline = np.array(["Ċ" in s for s in strings])
        self.indent_after = np.array([len(s) - len(s.rstrip("Ġ")) if "Ċ" in s else 0 for s in strings])
        self.opens_block = np.array([s.rstrip("Ġ").endswith(":") for s in strings])
        self.expr_start = np.array([s.endswith(("(", "=", "[", ",")) or s in ("Ġ=", "Ġreturn") for s in strings])
        self.rng = np.random.default_rng(seed)
        self.kinds = list(KINDS)
        self.weights = np.array(list(KINDS.values())) / sum(KINDS.values())
        self.big = np.flatnonzero(np.diff(starts) > 64)  # files worth cutting holes in

    def _span(self, a: int, b: int, kind: str) -> tuple[int, int] | None:
        """A hole [s, e) in the file tokens[a:b], or None if this file has no such hole here."""
        t, rng, nl = self.tokens, self.rng, self.newline
        limit = self.canvas_length - 1
        lines = a + np.flatnonzero(nl[t[a:b]])  # indices of newline tokens
        if len(lines) < 3:
            return None
        k = int(rng.integers(1, len(lines) - 1))
        line_start, line_end = lines[k - 1] + 1, lines[k]  # tokens of line k (after its newline token)
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

    def example(self) -> tuple[list[int], np.ndarray, np.ndarray, int]:
        while True:
            f = int(self.rng.choice(self.big))
            a, b = int(self.starts[f]), int(self.starts[f + 1])
            kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.weights))]
            span = self._span(a, b, kind)
            if span is not None:
                break
        s, e = span
        t = self.tokens
        middle = t[s:e].astype(np.int64)
        prefix = t[max(a, s - self.max_prefix) : s]
        suffix = t[e : min(b, e + self.max_suffix)]
        prompt = [self.bos, self.fim_suffix, *suffix.tolist(), self.fim_prefix, *prefix.tolist(), self.fim_middle]
        canvas = np.full(self.canvas_length, self.eos, dtype=np.int64)
        canvas[: len(middle)] = middle
        start = canvas.copy()
        if kind == "edit":
            old = self._corrupt(middle)
            start = np.full(self.canvas_length, self.eos, dtype=np.int64)
            start[: len(old)] = old
        return prompt, canvas, start, len(middle)

    def batch(self, size: int) -> Batch:
        items = [self.example() for _ in range(size)]
        width = max(len(p) for p, *_ in items)
        prompt = np.full((size, width), self.pad, dtype=np.int64)
        for i, (p, *_rest) in enumerate(items):
            prompt[i, : len(p)] = p
        return Batch(
            prompt=prompt,
            prompt_len=np.array([len(p) for p, *_ in items]),
            canvas=np.stack([c for _, c, _, _ in items]),
            start=np.stack([s for _, _, s, _ in items]),
            middle_len=np.array([m for *_, m in items]),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path, default=DATA / "tokenizer")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--max-tokens", type=int, default=0)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    prepare(args.tokenizer, args.out, args.split, args.max_tokens)
