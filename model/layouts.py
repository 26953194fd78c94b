"""Prompt layouts: turn (prefix, suffix[, old text]) into encoder prompt ids and an initial canvas.

One layout per checkpoint family, named in the checkpoint's config (`diffgem_prompt_layout`). Special ids
always come from the tokenizer, never literals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from diffgem_protocol import plain_instruction

# Prefix tokens are dropped from the front in whole bands, so that typing at the cursor keeps the
# window's first token (and with it the prompt cache) unchanged until a band boundary is crossed.
PREFIX_TRIM_BAND = 128
CHAT_TRIM_BAND_CHARS = 512  # the same for the `chat` layout, which trims characters


@dataclass(frozen=True)
class Prompt:
    ids: list[int]  # encoder prompt
    # Starting canvases, one per canvas (edits: the old text, chunked); missing ones start from noise.
    initial_canvases: list[list[int]] = field(default_factory=list)
    pinned: dict[int, int] = field(
        default_factory=dict
    )  # canvas position -> token id, never re-drawn
    # Token healing: text taken off the end of the prefix because byte-level BPE attaches it to the
    # next word (" foo" is one token, so a prefix ending in " " never occurs in training). The model
    # writes it back at the start of its fill; the engine removes it from the answer.
    healed: str = ""


def _trim_front(ids: list[int], keep: int) -> list[int]:
    if len(ids) <= keep:
        return ids
    excess = len(ids) - keep
    drop = -(-excess // PREFIX_TRIM_BAND) * PREFIX_TRIM_BAND
    return ids[drop:]


def _old_text_canvases(
    tokenizer: PreTrainedTokenizerBase, old_text: str | None, canvas_length: int
) -> list[list[int]]:
    """Chunk an edit's old text into canvases; the last one always keeps room for the closing EOS,
    so a long selection is rewritten whole instead of being cut at one canvas."""
    if old_text is None:
        return []  # infill: every canvas starts from noise
    ids = tokenizer(old_text, add_special_tokens=False).input_ids
    eos_id = tokenizer.eos_token_id
    chunks = [ids[i : i + canvas_length] for i in range(0, len(ids), canvas_length)] or [[]]
    if len(chunks[-1]) == canvas_length:
        chunks.append([])
    return [chunk + [eos_id] * (canvas_length - len(chunk)) for chunk in chunks]


def fim_prompt(
    tokenizer: PreTrainedTokenizerBase,
    prefix: str,
    suffix: str,
    *,
    canvas_length: int,
    old_text: str | None = None,
    max_prefix_tokens: int = 320,
    max_suffix_tokens: int = 160,
    encode: Callable[[str], list[int]] | None = None,
    instruction: str | None = None,
) -> Prompt:
    """`<bos><fim_suffix>suffix<fim_prefix>prefix<fim_middle>`; the canvas is the middle padded with EOS.

    Suffix first: typing at the cursor only appends to the encoded text, so the KV cache of everything
    before it stays valid (ARCHITECTURE.md, "Prompt layouts"). `encode` (text -> ids, default the
    tokenizer's own) lets the engine reuse the last keystroke's tokens (incremental_tokens.py).
    A FIM checkpoint has no place for an instruction: the server never sends one (it asks the backend's
    layout first), and one that arrives anyway is refused rather than silently dropped.
    """
    if instruction is not None:
        raise ValueError("the fim layout takes no instruction (only the chat layout follows one)")
    if encode is None:
        encode = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    # One id each, not `get_vocab()`: that builds the whole vocabulary dict, ~13 ms per keystroke.
    fim = {
        t: tokenizer.convert_tokens_to_ids(t)
        for t in ("<fim_suffix>", "<fim_prefix>", "<fim_middle>")
    }
    healed = ""
    if old_text is None and prefix.endswith(" "):
        prefix, healed = prefix[:-1], " "
    suffix_ids = encode(suffix)[:max_suffix_tokens]
    prefix_ids = _trim_front(encode(prefix), max_prefix_tokens)
    ids = (
        [tokenizer.bos_token_id, fim["<fim_suffix>"]]
        + suffix_ids
        + [fim["<fim_prefix>"]]
        + prefix_ids
        + [fim["<fim_middle>"]]
    )
    initial = _old_text_canvases(tokenizer, old_text, canvas_length)
    return Prompt(ids=ids, initial_canvases=initial, healed=healed)


CHAT_INSTRUCTION = (
    "Fill in the code at <HOLE>. Answer with only the code that replaces <HOLE>, nothing else.\n\n"
)
CHAT_EDIT_INSTRUCTION = (
    "Rewrite the code between <EDIT> and </EDIT> so that it is correct and clear. Answer with only the "
    "new code for that region, nothing else.\n\n"
)
# "Rewrite selection…": the user's words replace "so that it is correct and clear", first in the turn as
# Copilot's inline chat and Continue's edit prompt put the request before the code. The instruction is
# plain text (diffgem_protocol.plain_instruction): one line, no tag the template could take for structure.
CHAT_EDIT_REQUEST = (
    "Rewrite the code between <EDIT> and </EDIT> as the user asks: {instruction}\n"
    "Answer with only the new code for that region, nothing else.\n\n"
)


def chat_user_turn(prefix: str, suffix: str, old_text: str | None, instruction: str | None) -> str:
    """The user turn of the `chat` layout: the task, then the code with its <HOLE> or <EDIT> marker."""
    if old_text is None:
        if instruction is not None:
            raise ValueError("an instruction rides on an edit, not on a fill")
        return CHAT_INSTRUCTION + prefix + "<HOLE>" + suffix
    task = (
        CHAT_EDIT_INSTRUCTION
        if instruction is None
        else CHAT_EDIT_REQUEST.format(instruction=plain_instruction(instruction))
    )
    return task + prefix + "<EDIT>" + old_text + "</EDIT>" + suffix


def chat_prompt(
    tokenizer: PreTrainedTokenizerBase,
    prefix: str,
    suffix: str,
    *,
    canvas_length: int,
    old_text: str | None = None,
    instruction: str | None = None,
    max_context_chars: int = 8000,
) -> Prompt:
    """Prompt-level infill for DiffusionGemma-it, which has no FIM tokens and no mask token.

    The instruction, the code with a `<HOLE>` (or `<EDIT>...</EDIT>`) marker and the rest of the file go in
    one user turn of the checkpoint's own chat template; an edit's `instruction` (the user's words) says
    how to rewrite it (`chat_user_turn`). Where the middle ends is not decided by the
    prompt: the engine probes a length and pins EOS after it (engine._with_chosen_length).
    """
    # The prefix is cut from the front in whole bands (as `fim` cuts tokens), so that typing at the cursor
    # keeps the prompt's start, and with it the prompt cache, until a band boundary is crossed.
    if len(prefix) > max_context_chars:
        drop = -(-(len(prefix) - max_context_chars) // CHAT_TRIM_BAND_CHARS) * CHAT_TRIM_BAND_CHARS
        prefix = prefix[drop:]
    suffix = suffix[: max_context_chars // 2]
    body = chat_user_turn(prefix, suffix, old_text, instruction)
    encoded: Any = tokenizer.apply_chat_template(
        [{"role": "user", "content": body}], tokenize=True, add_generation_prompt=True
    )
    if not isinstance(encoded, list):  # transformers 5 returns a BatchEncoding
        encoded = encoded["input_ids"]
    initial = _old_text_canvases(tokenizer, old_text, canvas_length)
    return Prompt(ids=[int(i) for i in encoded], initial_canvases=initial)


LAYOUTS: dict[str, Callable[..., Prompt]] = {"fim": fim_prompt, "chat": chat_prompt}
