"""The versioned message protocol between the LSP server and the resident model worker.

One JSON object per line over the worker's stdin (requests) and stdout (events). Pure data: imported by
both sides, so it must never import torch or pygls.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PROTOCOL_VERSION = 1

# Requests (server -> worker), by "op".
OP_GENERATE = "generate"
OP_CANCEL = "cancel"
OP_STATUS = "status"

# Events (worker -> server), by "event".
EV_HELLO = "hello"  # process is up, model not loaded yet
EV_READY = "ready"  # model loaded
EV_LOAD_FAILED = "load_failed"  # model could not be loaded; the worker stays up and answers errors
EV_DRAFT = "draft"  # an intermediate canvas of a running generation
EV_RESULT = "result"
EV_CANCELLED = "cancelled"
EV_ERROR = "error"
EV_STATUS = "status"


class ProtocolError(ValueError):
    """A line that is not a message of this protocol version."""


@dataclass(frozen=True)
class SamplerParams:
    rule: str = "confidence"
    max_steps: int = 8
    confidence_threshold: float = 0.9
    early_stop: bool = True


@dataclass(frozen=True)
class GenerateRequest:
    id: int
    prefix: str
    suffix: str
    old_text: str | None = None
    max_tokens: int = 32
    sampler: SamplerParams = field(default_factory=SamplerParams)
    seed: int = 0
    stream: bool = False  # send EV_DRAFT events

    def to_message(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "op": OP_GENERATE, **asdict(self)}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> GenerateRequest:
        fields = {k: v for k, v in message.items() if k not in ("v", "op")}
        fields["sampler"] = SamplerParams(**fields.get("sampler", {}))
        return cls(**fields)


@dataclass(frozen=True)
class GenerationResult:
    """What the worker reports for a finished generation (text plus the figures benchmarks read)."""

    text: str
    forwards: int
    canvases: int
    tokens: int
    tokens_per_forward: float
    mean_confidence: float
    encoded_tokens: int
    reused_tokens: int
    encode_ms: float
    denoise_ms: float
    finished: bool = True  # the fill ended at an EOS (False: cut by the token budget)


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


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "event": name, **fields}


def request(op: str, **fields: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "op": op, **fields}
