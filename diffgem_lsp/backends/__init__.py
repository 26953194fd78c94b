"""Model backends behind one interface (`base.Backend`), and the factory that picks one from the settings.

The session calls `create_backend`; features never import a backend module. Nothing here imports torch.
"""

from __future__ import annotations

from ..settings import Settings
from .base import Backend, BackendError, DraftCallback, Prefiller, StateCallback, prefiller

__all__ = [
    "Backend",
    "BackendError",
    "DraftCallback",
    "Prefiller",
    "StateCallback",
    "create_backend",
    "prefiller",
]


def create_backend(settings: Settings, on_state: StateCallback) -> Backend:
    """The backend the settings ask for (`backend`: local worker, shared daemon or vLLM), swapped in place
    when that setting changes (selected.py)."""
    from .selected import SelectedBackend

    return SelectedBackend(settings, on_state=on_state)
