"""Client options (camelCase, from initializationOptions or didChangeConfiguration) resolved into Settings.

Raw options are untrusted editor input: each bad key or value becomes one problem message and falls back
to its default; resolving never raises.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from diffgem_protocol import SAMPLER_RULES


@dataclass(frozen=True)
class Settings:
    model_path: str = ""  # "" = the embedded model shipped in diffgem_model/embedded
    device: str = "auto"
    precision: str = "auto"
    automatic_suggestions: bool = True
    debounce_ms: int = 60
    automatic_steps: int = 8
    invoked_steps: int = 24
    sampler: str = "confidence"
    # Lower than the sampler's 0.9: on `make eval`'s 713 validation holes 0.7 kept exact match (43 vs 42
    # hits) with 1.81 instead of 2.62 forwards per request (bench/threshold_eval.md, issue 15).
    confidence_threshold: float = 0.7
    early_stop: bool = True
    stream_drafts: bool = False
    diagnostics: bool = True
    adaptive_debounce: bool = True
    prefill: bool = True
    candidates: int = 1
    prompt_cache_mb: int = 8192
    max_file_kb: int = 1024
    seed: int = 0
    log_level: str = "info"
    # Which backend runs the model (diffgem_lsp/backends): this server's own worker, the machine's shared
    # daemon, or a vLLM server. The API key is never a setting: only where to read it.
    backend: str = "local"
    endpoint: str = ""
    api_key_env: str = ""
    api_key_file: str = ""
    remote_model: str = ""
    remote_fallback: bool = False

    def worker_key(self) -> tuple:
        """Settings that need a fresh worker (or backend connection) when they change."""
        return (
            self.model_path,
            self.device,
            self.precision,
            self.prompt_cache_mb,
            self.backend,
            self.endpoint,
            self.api_key_env,
            self.api_key_file,
            self.remote_model,
            self.remote_fallback,
        )


CHOICES: dict[str, tuple[str, ...]] = {
    "device": ("auto", "cpu", "cuda"),
    "precision": ("auto", "fp32", "bf16", "fp8", "int8", "int4"),
    "sampler": tuple(sorted(SAMPLER_RULES)),
    "log_level": ("error", "warning", "info", "debug"),
    "backend": ("local", "daemon", "vllm"),
}
RANGES: dict[str, tuple[float, float]] = {
    "debounce_ms": (0, 2000),
    "automatic_steps": (1, 256),
    "invoked_steps": (1, 4096),
    "confidence_threshold": (0.0, 2.0),
    "prompt_cache_mb": (0, 65536),
    "max_file_kb": (1, 1 << 20),
    "seed": (0, 2**31 - 1),
    "candidates": (1, 8),
}

# One line per setting, for the README table, the VS Code package.json and --help.
DESCRIPTIONS: dict[str, str] = {
    "model_path": "Checkpoint directory; empty for the embedded model.",
    "device": "Where the model runs: auto (CUDA if present), cpu or cuda.",
    "automatic_suggestions": "Answer as-you-type (automatic) inline completion requests.",
    "debounce_ms": "Wait this long after a keystroke before asking the model (automatic requests).",
    "automatic_steps": "Denoising step budget for as-you-type suggestions.",
    "invoked_steps": "Denoising step budget for invoked completions and code actions.",
    "sampler": "Parallel-commit rule: confidence (commit every token above the threshold) or entropy.",
    "confidence_threshold": "Commit threshold of the confidence rule; above 1 commits one token per step (slowest).",
    "early_stop": "Stop denoising once the canvas is stable and confident.",
    "stream_drafts": "Send each intermediate canvas as a diffgem/draft notification (and $/progress when the request has a workDoneToken).",
    "diagnostics": "Report syntax errors (tree-sitter ERROR/MISSING nodes) as diagnostics, with a Repair quick fix.",
    "adaptive_debounce": "Wait before an automatic request according to typing speed, from 0 up to debounceMs; false: always debounceMs.",
    "prefill": "Warm the prompt cache in the background on didOpen and didChange, so the first suggestion at the cursor reuses the encoded document (local worker and daemon; skipped for vllm).",
    "candidates": "Distinct suggestions an invoked inline completion returns, from one batched denoise of that many rows (automatic requests return one).",
    "precision": "Weights: auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp8 (FP8 experts, GPUs of compute capability 8.9+), int8/int4 (bitsandbytes: linear layers only, experts stay bf16).",
    "prompt_cache_mb": "Upper bound for encoder caches reused across keystrokes; within it the cache takes a share of the device's free memory (0 disables).",
    "max_file_kb": "Files larger than this get no suggestions.",
    "seed": "Random seed of the sampler.",
    "log_level": "Server log level.",
    "backend": "Who runs the model: local (this server's own worker), daemon (one shared model for all editor windows on this machine) or vllm (a vLLM server at endpoint).",
    "endpoint": "vLLM server: https://host:port, or http://127.0.0.1:port / unix:/path.sock on this machine (plain http only on loopback).",
    "api_key_env": "Name of the environment variable holding the vLLM API key (the key itself is never a setting).",
    "api_key_file": "File holding the vLLM API key; must be readable by you only (chmod 600).",
    "remote_model": "Served model name on the vLLM server; empty for the first it lists.",
    "remote_fallback": "While the vLLM server is unreachable, answer from the local worker instead.",
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Return the value as the default's type, or raise ValueError with a message for the user."""
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_shown(value)}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {_shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            # JSON-legal 1e400 parses to inf: int(inf) would raise OverflowError, not ValueError.
            raise ValueError(f"expected a finite number, got {value!r}")
        if kind is int and float(value) != int(value):
            raise ValueError(f"expected a whole number, got {_shown(value)}")
        low, high = RANGES.get(name, (float("-inf"), float("inf")))
        if not low <= value <= high:
            raise ValueError(f"expected a value from {low:g} to {high:g}, got {_shown(value)}")
        return kind(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_shown(value)}")
    if "\x00" in value:  # no path or name has one; a process argument cannot carry it
        raise ValueError(f"a NUL character is not allowed, got {_shown(value)}")
    if name in CHOICES and value not in CHOICES[name]:
        raise ValueError(f"expected one of {', '.join(CHOICES[name])}, got {_shown(value)}")
    return value


def resolve_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Apply raw client options on top of `base` (defaults if None); return settings and problems."""
    settings = base or Settings()
    problems: list[str] = []
    if raw is None:
        return settings, problems
    if isinstance(raw, dict) and isinstance(raw.get("diffgem"), dict):
        raw = raw["diffgem"]  # accept {"diffgem": {...}} as VS Code-style clients send it
    if not isinstance(raw, dict):
        return settings, [f"diffgem settings must be an object, got {type(raw).__name__}"]
    known = {f.name: f for f in fields(Settings)}
    defaults = Settings()
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        name = snake(key)
        if name not in known:
            problems.append(f"unknown setting diffgem.{str(key)[:60]} (ignored)")
            continue
        try:
            changes[name] = _coerce(name, value, getattr(defaults, name))
        except (ValueError, OverflowError, TypeError) as exc:  # one bad key never drops the others
            problems.append(f"setting diffgem.{key}: {exc}; using {getattr(defaults, name)!r}")
            changes[name] = getattr(defaults, name)
    return replace(settings, **changes), problems
