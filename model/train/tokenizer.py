"""Train the embedded model's tokenizer: byte-level BPE for code with the `fim` layout's special tokens.

A small vocabulary (8k) keeps the embedding table and each sampling step over [canvas, vocab] cheap.
Saved so that `AutoTokenizer.from_pretrained(dir)` loads it offline.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from ..checkpoint import train_bpe_tokenizer
from .corpus import load


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    return train_bpe_tokenizer(texts, vocab_size, min_frequency=4)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--sample-mb", type=float, default=40)
    args = parser.parse_args()
    records = load("train")
    random.Random(0).shuffle(records)
    texts, total = [], 0
    for record in records:
        texts.append(record["text"])
        total += len(record["text"])
        if total > args.sample_mb * 1e6:
            break
    tokenizer = train_tokenizer(texts, args.vocab_size)
    tokenizer.save_pretrained(args.out)
    sample = "def add(a, b):\n    return a + b  # 12345\n"
    print(len(tokenizer), tokenizer.tokenize(sample))
