"""The `Backend` interface: what the session asks of whatever runs the model, and its error types.

Features and the session see only this interface, never a process, socket or URL, so a local worker, a
shared daemon or a remote vLLM server can answer the same requests. Backends import from here (not from
the package `__init__`, which imports them). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from diffgem_protocol import GenerateParams, GenerationResult

from ..settings import Settings

# (state, message): "loading" | "ready" | "generating" | "error" | "stopped", and a line for the user.
StateCallback = Callable[[str, str], None]
DraftCallback = Callable[[str], None]


class BackendError(RuntimeError):
    """The backend could not run a request (crashed, failed to load the model, or refused it)."""


class Backend(Protocol):
    """What the session asks of a model backend.

    - `generate` runs one hole; cancelling the task that awaits it is the cancel verb: the backend
      must stop the work on its side (between denoising steps for the local worker).
    - `status` answers at once with a dict the `diffgem.status` command returns as is (at least
      `state`, `pid`, `model`, `error`).
    - state changes go to the `on_state` callback given at construction, never raised.
    """

    settings: Settings
    state: str
    model: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def restart(self, settings: Settings | None = None) -> None: ...

    async def wait_ready(self, timeout: float) -> None: ...

    async def generate(
        self, params: GenerateParams, on_draft: DraftCallback | None = None
    ) -> GenerationResult: ...

    async def status(self, timeout: float = 5.0) -> dict[str, Any]: ...


class Prefiller(Protocol):
    """Optional capability: warm the backend's prompt cache for `params` without denoising (the wire
    protocol's `prefill`). A backend that has it says so with `supports_prefill = True`."""

    async def prefill(self, params: GenerateParams) -> dict[str, Any]: ...


def prefiller(backend: Backend) -> Prefiller | None:
    """The backend's prompt-cache warm-up, or None where there is none (a remote vLLM server keeps
    its own cache): callers skip it silently."""
    return cast(Prefiller, backend) if getattr(backend, "supports_prefill", False) else None
