"""The backend the session holds: it builds the one `settings.backend` names and swaps it when that changes.

A `Backend` itself (it only delegates), so the session and features never learn which backend runs, and
switching `backend` from "local" to "daemon" or "vllm" in the editor's settings needs no restart of the
server. No torch: the concrete backends are imported when first chosen.
"""

from __future__ import annotations

import logging
from typing import Any

from diffgem_protocol import GenerateParams, GenerationResult

from ..settings import Settings
from .base import Backend, DraftCallback, StateCallback

log = logging.getLogger("diffgem.backend")


def build_backend(settings: Settings, on_state: StateCallback) -> Backend:
    """A fresh concrete backend for `settings.backend` (not started)."""
    if settings.backend == "daemon":
        from .daemon import DaemonClient

        return DaemonClient(settings, on_state=on_state)
    from .local import LocalWorker

    if settings.backend == "vllm":
        from .vllm import VllmBackend

        fallback = None
        if settings.remote_fallback:
            # The fallback's own loading states would read as the remote's: they go to the log only.
            fallback = LocalWorker(
                settings, on_state=lambda s, m: log.info("local fallback: %s %s", s, m)
            )
        return VllmBackend(settings, on_state=on_state, fallback=fallback)
    return LocalWorker(settings, on_state=on_state)


class SelectedBackend:
    def __init__(self, settings: Settings, on_state: StateCallback):
        self.on_state = on_state
        self._settings = settings
        self._current: Backend | None = None
        self._kind = ""

    @property
    def current(self) -> Backend:
        if self._current is None or self._kind != self._settings.backend:
            self._current, self._kind = (
                build_backend(self._settings, self.on_state),
                self._settings.backend,
            )
        return self._current

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value
        if self._current is not None and self._kind == value.backend:
            self._current.settings = value

    @property
    def state(self) -> str:
        return self._current.state if self._current is not None else "stopped"

    @state.setter
    def state(self, value: str) -> None:
        self.current.state = value

    @property
    def model(self) -> str:
        return self._current.model if self._current is not None else ""

    @model.setter
    def model(self, value: str) -> None:
        self.current.model = value

    def __getattr__(self, name: str) -> Any:
        # Anything else (pid, error, capabilities...) is the running backend's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current, name)

    async def start(self) -> None:
        await self.current.start()

    async def stop(self) -> None:
        if self._current is not None:
            await self._current.stop()

    async def restart(self, settings: Settings | None = None) -> None:
        if settings is not None:
            self._settings = settings
        if self._current is not None and self._kind != self._settings.backend:
            old, self._current = self._current, None
            log.info("backend: %s -> %s", self._kind, self._settings.backend)
            await old.stop()
        if self._current is None:
            await self.current.start()
        else:
            await self._current.restart(self._settings)

    async def wait_ready(self, timeout: float) -> None:
        await self.current.wait_ready(timeout)

    async def generate(
        self, params: GenerateParams, on_draft: DraftCallback | None = None
    ) -> GenerationResult:
        return await self.current.generate(params, on_draft=on_draft)

    async def status(self, timeout: float = 5.0) -> dict[str, Any]:
        return await self.current.status(timeout)
