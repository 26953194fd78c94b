"""A tiny random chat-layout checkpoint whose every answer is a Python identifier, for rewrite tests.

Test-only. The instruction rewrite needs a `chat` model (no FIM tokens, Gemma's chat template:
tests/chat_checkpoint.py), and an end-to-end test needs an answer the server keeps: a rewrite that makes
the file parse worse is dropped (diffgem_lsp/canvas/edit.py postprocess_edit), and a random byte-level
model writes byte soup. Here the vocabulary is Gemma's special tokens plus `a`-`z` and `_`, one token a
character, so whatever the random weights pick decodes to an identifier, and a rewrite of an identifier
usually parses. Which identifier is the model's business: tests search, never assume it.
"""

from __future__ import annotations

import string
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from tests.chat_checkpoint import GEMMA_CHAT_TEMPLATE, GEMMA_SPECIALS, save_chat_model

LETTERS = string.ascii_lowercase + "_"
# Ids the config gives to images (diffusion_gemma_config: the last three) must not be letters.
IMAGE_SPECIALS = ["<image_soft_token>", "<start_of_image>", "<end_of_image>"]


def identifier_tokenizer() -> PreTrainedTokenizerFast:
    """One token per letter or underscore; anything else in a prompt reads as <unk>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    names = [*GEMMA_SPECIALS, "<unk>", *LETTERS, *IMAGE_SPECIALS]
    tok = Tokenizer(models.WordLevel({name: i for i, name in enumerate(names)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        additional_special_tokens=[*GEMMA_SPECIALS[3:], *IMAGE_SPECIALS],
        model_max_length=8192,
    )
    fast.chat_template = GEMMA_CHAT_TEMPLATE
    return fast


def make_identifier_checkpoint(path: str | Path, *, seed: int = 0) -> Path:
    return save_chat_model(path, identifier_tokenizer(), seed=seed)
