"""The versioned wire protocol between the language server and a model backend, and its data types.

Neutral ground: `diffgem_lsp` (server) and `diffgem_model` (worker, engine) both import it, and it imports
neither of them, nor torch, nor pygls — only the standard library.

One JSON object per line over the worker's stdin (requests) and stdout (events). The types here are the
only ones that cross the boundary: `SamplerSettings` (every denoising knob, defined once),
`GenerateParams` (one hole to fill), and `GenerationResult` (what the engine returns and the server reads,
sent as is).
"""

from __future__ import annotations

import json
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateParams:
        data = dict(data)
        data["sampler"] = SamplerSettings(**data.get("sampler", {}))
        return cls(**data)


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

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    def to_message(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": self.tokens}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> GenerationResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class GenerateRequest:
    id: int
    params: GenerateParams
    stream: bool = False  # send EV_DRAFT events

    def to_message(self) -> dict[str, Any]:
        return request(OP_GENERATE, id=self.id, stream=self.stream, params=asdict(self.params))

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
        return request(OP_PREFILL, id=self.id, params=asdict(self.params))

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> PrefillRequest:
        return cls(id=int(message["id"]), params=GenerateParams.from_dict(message["params"]))


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
