"""Prompt-level infill and rewrite for a vLLM server: a request body for `/v1/completions` per canvas.

Pure functions (no I/O): the backend tokenises through the server and sends what these return. vLLM
rejects `suffix` (HTTP 400, vllm/entrypoints/openai/completion/serving.py), so the hole is laid out in the
prompt itself, the same two layouts the local engine uses (model/layouts.py): `fim` for checkpoints trained
with FIM tokens (the embedded model) and `chat` for DiffusionGemma-it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from diffgem_protocol import GenerateParams, plain_instruction

# Characters of context sent around the hole: the server tokenises, and vLLM answers 400 when a prompt
# passes max_model_len, so the client keeps well inside it (4 characters per token is a safe bound for code).
MAX_PREFIX_CHARS = 6000
MAX_SUFFIX_CHARS = 3000

# The instructions of the local `chat` layout (model/layouts.py, CHAT_INSTRUCTION / CHAT_EDIT_INSTRUCTION /
# CHAT_EDIT_REQUEST, chat_user_turn), repeated here because the LSP process must not import the model
# package (it imports transformers); tests/lsp/test_instruction_rewrite.py checks that both agree.
CHAT_INSTRUCTION = (
    "Fill in the code at <HOLE>. Answer with only the code that replaces <HOLE>, nothing else.\n\n"
)
CHAT_EDIT_INSTRUCTION = (
    "Rewrite the code between <EDIT> and </EDIT> so that it is correct and clear. Answer with only the "
    "new code for that region, nothing else.\n\n"
)
CHAT_EDIT_REQUEST = (
    "Rewrite the code between <EDIT> and </EDIT> as the user asks: {instruction}\n"
    "Answer with only the new code for that region, nothing else.\n\n"
)


@dataclass(frozen=True)
class Capabilities:
    """What the connected server can do, probed at connect; features never see what it cannot."""

    model: str
    layout: str  # "fim" | "chat"
    max_model_len: int | None = None
    xargs: bool = False  # vllm_xargs diffusion arguments are validated (a diffusion-aware server)
    canvas_length: int | None = None  # the served canvas (from the server's own validation message)
    vocab_size: int | None = None
    eos_id: int | None = None
    tokenize: bool = False  # /tokenize is served (needed for seed canvases and the chat layout)
    drafts: bool = False  # vLLM streams whole committed canvases, never intermediate drafts

    @property
    def seed_canvas(self) -> bool:
        return self.xargs and self.tokenize and bool(self.canvas_length) and self.eos_id is not None

    @property
    def pinning(self) -> bool:
        return self.seed_canvas and bool(self.vocab_size)


def trim_context(prefix: str, suffix: str) -> tuple[str, str]:
    return prefix[-MAX_PREFIX_CHARS:], suffix[:MAX_SUFFIX_CHARS]


def fim_text(prefix: str, suffix: str) -> tuple[str, str]:
    """The `fim` layout as text (`<bos><fim_suffix>suffix<fim_prefix>prefix<fim_middle>`), and the healed
    text: a trailing space is taken off the prefix because byte-level BPE joins it to the next word, and
    the model writes it back (model/layouts.py, fim_prompt)."""
    healed = ""
    if prefix.endswith(" "):
        prefix, healed = prefix[:-1], " "
    return f"<bos><fim_suffix>{suffix}<fim_prefix>{prefix}<fim_middle>", healed


def chat_messages(
    prefix: str, suffix: str, old_text: str | None, instruction: str | None = None
) -> list[dict[str, str]]:
    """The one user turn of the `chat` layout: the task (an edit's `instruction`, as plain text, when
    the user gave one), then the code with its <HOLE> or <EDIT> marker."""
    if old_text is None:
        if instruction is not None:
            raise ValueError("an instruction rides on an edit, not on a fill")
        body = CHAT_INSTRUCTION + prefix + "<HOLE>" + suffix
    else:
        task = (
            CHAT_EDIT_INSTRUCTION
            if instruction is None
            else CHAT_EDIT_REQUEST.format(instruction=plain_instruction(instruction))
        )
        body = task + prefix + "<EDIT>" + old_text + "</EDIT>" + suffix
    return [{"role": "user", "content": body}]


def infill_seed(budget: int, caps: Capabilities, seed: int) -> tuple[list[int], list[int]] | None:
    """Seed canvas and pinned positions that bound an infill to `budget` tokens: EOS pinned after it.

    The open slots start from uniform noise, as DiffusionGemma's uniform-state sampler starts every
    canvas (its generate() draws the canvas with randint over the vocabulary); only the EOS run is held.
    None when the budget fills the canvas (nothing to pin) or the server cannot pin.
    """
    if not caps.pinning or caps.canvas_length is None or budget >= caps.canvas_length:
        return None
    assert caps.vocab_size is not None and caps.eos_id is not None
    rng = random.Random(seed)
    noise = [rng.randrange(caps.vocab_size) for _ in range(budget)]
    padding = [caps.eos_id] * (caps.canvas_length - budget)
    return noise + padding, list(range(budget, caps.canvas_length))


def edit_seed(old_ids: list[int], caps: Capabilities) -> list[int] | None:
    """The old text padded with EOS as the starting canvas of a rewrite (self-correction keeps what was
    right); None when it does not fit one canvas with room for the closing EOS."""
    if not caps.seed_canvas or caps.canvas_length is None or caps.eos_id is None:
        return None
    if len(old_ids) >= caps.canvas_length:
        return None
    return old_ids + [caps.eos_id] * (caps.canvas_length - len(old_ids))


def completion_body(
    req: GenerateParams,
    caps: Capabilities,
    prompt: str | list[int],
    *,
    seed_canvas: list[int] | None = None,
    pinned: list[int] | None = None,
) -> dict[str, Any]:
    """A streaming `/v1/completions` body. Temperature is left to the checkpoint's schedule (vLLM takes it
    from the generation config for diffusion models); penalties are not sent (vLLM ignores them)."""
    body: dict[str, Any] = {
        "model": caps.model,
        "prompt": prompt,
        "max_tokens": max(1, req.max_tokens),
        "seed": req.seed,
        "stream": True,
        "stream_options": {"include_usage": True},
        "skip_special_tokens": True,
        "return_token_ids": True,  # token ids per streamed chunk (vLLM >= 0.10.2); absent on older servers
    }
    if isinstance(prompt, str):
        body["add_special_tokens"] = False  # the layout writes <bos> itself
    if caps.xargs:
        xargs: dict[str, Any] = {"diffusion_max_steps": req.sampler.max_steps}
        if seed_canvas is not None:
            xargs["diffusion_seed_canvas"] = seed_canvas
            if pinned:
                xargs["diffusion_pinned"] = pinned
        body["vllm_xargs"] = xargs
    return body
