"""Rewrite with an instruction: whether the running model can take one, and the user's words checked.

No LSP transport and no torch: the session (status), the code-action listing and the command read the
answers here. The instruction itself is placed by the layouts (model/layouts.py CHAT_EDIT_REQUEST and its
copy in backends/vllm_prompts.py), as plain text (diffgem_protocol.plain_instruction).

Like Copilot's inline chat and Continue's edit, the user selects code and types what to change; a
diffusion checkpoint follows such words only when it was tuned on chat turns (the `chat` layout of
DiffusionGemma-it). The embedded model's `fim` layout has no place for them, so there it is hidden.
"""

from __future__ import annotations

from typing import Any

from diffgem_protocol import MAX_INSTRUCTION_CHARS

# The layout whose prompt carries an instruction (model/layouts.py LAYOUTS).
INSTRUCTION_LAYOUT = "chat"
# States in which the backend's layout is the one that answers (loading: the previous model's is stale).
_ANSWERING = ("ready", "generating")
# The client capability an editor plugin sets when it can ask the user for the instruction (an input
# box): `capabilities.experimental.diffgem.instructionPrompt = true`. An LSP code action cannot ask for
# text itself, so a client without a prompt (Helix, a bare eglot) is not offered the action.
CLIENT_FLAG = "instructionPrompt"

COMMAND = "diffgem.rewriteWithInstruction"
TITLE = "Rewrite selection…"

# What the user reads after "diffgem: " when the command cannot run (the same words in every editor).
NOT_FOLLOWED = "this model does not take instructions ({layout} layout): use Rewrite selection"
NOT_READY = "the model is not ready: try again once it has loaded"
EMPTY = "Rewrite selection… needs an instruction"
TOO_LONG = f"the instruction is longer than {MAX_INSTRUCTION_CHARS} characters"


class InstructionRefused(ValueError):
    """The command cannot run: its message is for the user (after "diffgem: ")."""


def backend_layout(backend: Any) -> str | None:
    """The prompt layout of the model answering now: a remote server's probed capabilities, or the
    local worker's / daemon's ready event. None while unknown (not connected, loading, an old worker)."""
    caps = getattr(backend, "capabilities", None)
    if caps is not None:
        return getattr(caps, "layout", None)
    layout = getattr(backend, "layout", None)
    return layout if isinstance(layout, str) else None


def takes_instructions(backend: Any) -> bool:
    """Whether a rewrite request may carry an instruction to this backend as it is now."""
    return backend.state in _ANSWERING and backend_layout(backend) == INSTRUCTION_LAYOUT


def client_prompts(capabilities: Any) -> bool:
    """Whether the client said it asks the user for an instruction (see CLIENT_FLAG)."""
    experimental = getattr(capabilities, "experimental", None) if capabilities else None
    ours = experimental.get("diffgem") if isinstance(experimental, dict) else None
    return isinstance(ours, dict) and ours.get(CLIENT_FLAG) is True


def refusal(backend: Any) -> str | None:
    """Why this backend cannot take an instruction now, in the user's words, or None when it can."""
    if takes_instructions(backend):
        return None
    if backend.state not in _ANSWERING:
        return NOT_READY
    return NOT_FOLLOWED.format(layout=backend_layout(backend) or "unknown")


def checked(raw: Any) -> str:
    """The instruction as given, or InstructionRefused: missing, blank, not text, or too long. Cutting a
    long one would have the model act on half a request; the layouts make it plain text."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InstructionRefused(EMPTY)
    if not isinstance(raw, str):
        raise InstructionRefused(f"the instruction must be text, not {type(raw).__name__}")
    if len(raw) > MAX_INSTRUCTION_CHARS:
        raise InstructionRefused(TOO_LONG)
    return raw.strip()
