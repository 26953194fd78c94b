"""The versioned wire protocol between the language server and a model backend, and its data types.

Neutral ground: `diffgem_lsp` (server) and `diffgem_model` (worker, engine) both import it, and it imports
neither of them, nor torch, nor pygls — only the standard library.

One JSON object per line over the worker's stdin (requests) and stdout (events). The types here are the
only ones that cross the boundary: `SamplerSettings` (every denoising knob, defined once),
`GenerateParams` (one hole to fill), and `GenerationResult` (what the engine returns and the server reads,
sent as is).

Two additive request shapes ride on `generate` (a worker of this version answers them; a remote backend
does not: the server checks `supports_batched` on the backend first):
- `candidates` = K > 1: K rows of one batched denoise of the same prompt, each from its own noise; the
  result's `candidates` holds the K fills (text, tokens, mean log-probability, finished), and its `text`
  is row 0's.
- `segments` + `hole_tokens`: several holes in one canvas (diffgem_lsp/canvas/multihole.py's
  MultiHoleCanvas.request()): `prefix` before the first hole, `suffix` after the last, `segments[i]` the
  known text between hole i and i+1 (pinned in the canvas), `hole_tokens[i]` hole i's token budget
  (len(segments) + 1 of them). The result's `fills` holds one string per hole, `text` is their join.

`instruction` rides on an edit (`old_text` set): the user's words for the rewrite ("Rewrite selection…"),
which only the `chat` layout puts in its prompt (model/layouts.py, diffgem_lsp/backends/vllm_prompts.py);
it is sent only when set, so a worker that predates it still reads every other request.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PROTOCOL_VERSION = 2

# Requests (server -> worker), by "op".
OP_GENERATE = "generate"
OP_CANCEL = "cancel"
OP_STATUS = "status"
# Encode a hole's prompt into the worker's prompt cache, no denoising: the next generate for the same
# prompt reuses it. Additive (an older worker answers "unknown op"); a queued one is dropped once any
# other request is waiting behind it, so a real generate never waits for a warm-up.
OP_PREFILL = "prefill"

# Events (worker -> server), by "event".
EV_HELLO = "hello"  # process is up, model not loaded yet
EV_READY = "ready"  # model loaded
EV_LOAD_FAILED = "load_failed"  # model could not be loaded; the worker stays up and answers errors
EV_DRAFT = "draft"  # an intermediate canvas of a running generation
EV_RESULT = "result"
EV_CANCELLED = "cancelled"
EV_ERROR = "error"
EV_STATUS = "status"
EV_PREFILLED = (
    "prefilled"  # a prefill's prompt is in the cache: encoded_tokens, reused_tokens, encode_ms
)

SAMPLER_RULES = ("entropy", "confidence")
# Rows of one batched denoise: each costs its share of every forward (and K x canvas x vocab logits).
MAX_CANDIDATES = 8
# An instruction is a sentence or two ("use a list comprehension"), not a document: longer ones are
# refused with a message rather than cut, so the model never acts on half a request.
MAX_INSTRUCTION_CHARS = 1000
# Tag-like text that a chat template or tokenizer could read as structure: the layouts' own markers
# (<EDIT>, </EDIT>, <HOLE>) and special tokens (<bos>, <start_of_turn>, <fim_middle>, <|turn>, ...).
# A tokenizer matches special tokens inside user text too (tokenizers' added-token split), so such a tag
# in an instruction could close the user turn; `plain_instruction` turns its brackets into ‹ ›.
_TAG = re.compile(r"<(/?\|?[A-Za-z0-9_]+\|?)>")
_MARKER_NAMES = {"bos", "eos", "pad", "unk", "mask", "edit", "hole"}


def plain_instruction(text: str) -> str:
    """The user's instruction as plain text for a prompt: one line (control characters and line breaks
    become spaces, runs of spaces one), and no tag a template or tokenizer would take for structure."""
    flat = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text
    )
    flat = " ".join(flat.split())

    def neutral(match: re.Match[str]) -> str:
        name = match.group(1)
        bare = name.strip("/|").lower()
        if "_" in name or "|" in name or bare in _MARKER_NAMES:
            return f"\u2039{name}\u203a"
        return match.group(0)  # `List<int>`, `<T>`: code, left as written

    return _TAG.sub(neutral, flat)


class ProtocolError(ValueError):
    """A line that is not a message of this protocol version."""


@dataclass(frozen=True)
class SamplerSettings:
    """Denoising settings; the defaults are DiffusionGemma's published ones (its generation config).

    The entropy bound is from "Accelerated Sampling from Masked Diffusion Models via Entropy Bounded
    Unmasking" (arXiv:2505.24857); the confidence rule is Fast-dLLM's threshold (arXiv:2505.22618).
    """

    rule: str = "entropy"  # "entropy" (DiffusionGemma's entropy bound) | "confidence" (Fast-dLLM)
    max_steps: int = 48
    entropy_bound: float = 0.1
    confidence_threshold: float = 0.9
    t_max: float = 0.8
    t_min: float = 0.4
    stability_threshold: int = 1
    stop_entropy: float = (
        0.005  # mean-entropy bar of the stable-and-confident early stop (0: never)
    )

    def __post_init__(self) -> None:
        assert self.rule in SAMPLER_RULES, f"unknown commit rule {self.rule!r}"
        assert self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"


@dataclass(frozen=True)
class GenerateParams:
    """One hole to fill: the text around it, the budget and the sampler."""

    prefix: str
    suffix: str
    old_text: str | None = None  # edit canvases start from the old text
    max_tokens: int = 32  # longer fills use several canvases
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    seed: int = 0
    candidates: int = 1  # K > 1: K rows of one batched denoise (GenerationResult.candidates)
    segments: tuple[str, ...] | None = None  # multi-hole: known text between holes, pinned
    hole_tokens: tuple[int, ...] | None = None  # multi-hole: per hole, its token budget
    instruction: str | None = None  # an edit's instruction from the user (chat layout only)

    def __post_init__(self) -> None:
        if self.instruction is not None:
            if not isinstance(self.instruction, str) or not self.instruction.strip():
                raise ValueError("instruction must be a non-empty string")
            if len(self.instruction) > MAX_INSTRUCTION_CHARS:
                raise ValueError(f"instruction longer than {MAX_INSTRUCTION_CHARS} characters")
            if self.old_text is None or self.segments is not None:
                raise ValueError("an instruction rides on an edit (old_text), not on a fill")
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be 1..{MAX_CANDIDATES}, got {self.candidates}")
        if (self.segments is None) != (self.hole_tokens is None):
            raise ValueError("segments and hole_tokens come together")
        if self.segments is not None and self.hole_tokens is not None:
            if len(self.hole_tokens) != len(self.segments) + 1:
                raise ValueError(
                    f"{len(self.hole_tokens)} hole_tokens for {len(self.segments)} segments "
                    "(one more hole than segments)"
                )
            if min(self.hole_tokens) < 1:
                raise ValueError("every hole needs a budget of at least 1 token")
            if self.candidates > 1 or self.old_text is not None:
                raise ValueError("a multi-hole request takes neither candidates nor old_text")

    @property
    def holes(self) -> int:
        """How many holes the request fills (1 unless it carries segments)."""
        return 1 if self.segments is None else len(self.segments) + 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateParams:
        data = dict(data)
        data["sampler"] = SamplerSettings(**data.get("sampler", {}))
        for name, kind in (("segments", str), ("hole_tokens", int)):
            if data.get(name) is not None:
                values = data[name]
                if not isinstance(values, list) or not all(type(v) is kind for v in values):
                    raise ValueError(f"{name} must be a list of {kind.__name__}")
                data[name] = tuple(values)
        return cls(**data)


@dataclass(frozen=True)
class Candidate:
    """One row of a batched denoise: its fill and how sure the model was of it."""

    text: str
    token_ids: list[int]
    mean_logprob: float  # mean log-probability of the fill's tokens and its EOS (higher is better)
    finished: bool  # the fill ended at an EOS within the canvas


@dataclass(frozen=True)
class GenerationResult:
    """A finished generation: the engine returns it, the worker sends it, the server reads it."""

    text: str
    token_ids: list[int]
    forwards: int
    canvases: int
    tokens_per_forward: float
    mean_confidence: float
    encoded_tokens: int
    reused_tokens: int
    encode_ms: float
    denoise_ms: float
    finished: bool  # the fill ended at an EOS (False: cut by the token budget)
    candidates: list[Candidate] | None = None  # a batched request's K rows, in row order
    fills: list[str] | None = None  # a multi-hole request's fill per hole

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    def to_message(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": self.tokens}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> GenerationResult:
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        if kept.get("candidates") is not None:
            kept["candidates"] = [Candidate(**c) for c in kept["candidates"]]
        return cls(**kept)


@dataclass(frozen=True)
class GenerateRequest:
    id: int
    params: GenerateParams
    stream: bool = False  # send EV_DRAFT events

    def to_message(self) -> dict[str, Any]:
        return request(OP_GENERATE, id=self.id, stream=self.stream, params=wire_params(self.params))

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> GenerateRequest:
        return cls(
            id=int(message["id"]),
            params=GenerateParams.from_dict(message["params"]),
            stream=bool(message.get("stream", False)),
        )


@dataclass(frozen=True)
class PrefillRequest:
    """Warm the prompt cache for `params` (prefix, suffix, old_text: what an infill request carries).

    Answered by EV_PREFILLED, or EV_CANCELLED when cancelled or superseded before it ran."""

    id: int
    params: GenerateParams

    def to_message(self) -> dict[str, Any]:
        return request(OP_PREFILL, id=self.id, params=wire_params(self.params))

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> PrefillRequest:
        return cls(id=int(message["id"]), params=GenerateParams.from_dict(message["params"]))


def wire_params(params: GenerateParams) -> dict[str, Any]:
    """`params` as sent: an unset instruction is left out (see the module docstring)."""
    data = asdict(params)
    if data.get("instruction") is None:
        data.pop("instruction", None)
    return data


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def decode(line: bytes | str) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"not an object: {line[:80]!r}")
    if message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {message.get('v')!r}, expected {PROTOCOL_VERSION}")
    return message


def version_of(line: bytes | str) -> object:
    """The `v` of a JSON object line whatever its version (None if the line is not one)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message.get("v") if isinstance(message, dict) else None


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "event": name, **fields}


def request(op: str, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "op": op, **fields}
