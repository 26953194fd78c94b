"""The engine: tokenise, lay out the prompt, encode it (through the prompt cache), denoise, detokenise.

It knows checkpoints and tensors, not editors: the worker feeds it plain requests and relays its results.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from diffgem_protocol import GenerateParams, GenerationResult

from . import EMBEDDED_CHECKPOINT
from .checkpoint import LoadedCheckpoint, load_checkpoint
from .fast_decoder import LeanDecoder, lean_unsupported
from .fast_encoder import LeanEncoder
from .fold import FOLD_MAX_TOKENS, FoldedStep, fold_enabled, foldable
from .incremental_tokens import IncrementalTokenizer
from .layouts import LAYOUTS, Prompt
from .memory import prompt_cache_budget
from .prompt_cache import CacheStats, PromptCache, crop_to
from .sampler import SamplerSettings, choose_length, denoise

# The engine's request and result are the wire protocol's own types: the worker sends a result as is.
Generation = GenerationResult


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Engine:
    def __init__(self, checkpoint: LoadedCheckpoint, *, prompt_cache_bytes: int | None = None):
        """`prompt_cache_bytes`: None sizes the cache from the device's free memory; a number caps it
        (0 disables it)."""
        self.checkpoint = checkpoint
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.layout = checkpoint.prompt_layout
        canvas_length = self.model.config.canvas_length
        assert canvas_length is not None, "the checkpoint's config has no canvas_length"
        self.canvas_length: int = canvas_length
        self.cache_budget = prompt_cache_budget(self.model, prompt_cache_bytes)
        self.prompt_cache = PromptCache(self.model, self.cache_budget.bytes)
        eos: int | list[int] | None = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids: tuple[int, ...] = tuple(eos) if isinstance(eos, list) else (eos,)
        # A keystroke changes a few characters of a file: re-tokenise only around them (identical ids).
        # DIFFGEM_INCREMENTAL_TOKENS=0 tokenises whole texts every time (for A/B runs, bench/speed.py).
        self.incremental = IncrementalTokenizer(self.tokenizer)
        if os.environ.get("DIFFGEM_INCREMENTAL_TOKENS") == "0":
            self.incremental.enabled = False
        # The lean CPU decoder step where it is proven equal to HF's forward (tests/unit/
        # test_fast_decoder.py); elsewhere HF's forward, which stays the reference.
        self.lean_unsupported = lean_unsupported(self.model)
        self.lean = LeanDecoder(self.model) if self.lean_unsupported is None else None
        if self.lean is not None:
            self.prompt_cache.lean_encoder = LeanEncoder(self.lean)
            # A fim prompt is at most 320 + 160 tokens and its markers (layouts.fim_prompt): every
            # encode of one then finds its bf16 matmuls built (fast_decoder.ROW_BUCKET).
            self.lean.warm_row_buckets(512)
        # Fold a keystroke's new prompt tokens into the first decoder step (model/fold.py).
        self.fold = (
            self.lean is not None
            and fold_enabled()
            and foldable(self.lean, self.prompt_cache.lean_encoder)
        )

    def sampler_defaults(self) -> dict[str, float]:
        """Temperature schedule recorded in the checkpoint's generation config, if it has one.

        DiffusionGemma's published 0.8 -> 0.4 suits the 26B model; a small FIM model can ship its own.
        """
        config = self.model.generation_config
        found = {k: getattr(config, k, None) for k in ("t_max", "t_min")}
        return {k: float(v) for k, v in found.items() if v is not None}

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        device: str = "auto",
        prompt_cache_mb: int | None = None,
        precision: str = "auto",
    ) -> Engine:
        checkpoint = load_checkpoint(
            path or EMBEDDED_CHECKPOINT, resolve_device(device), precision=precision
        )
        cap = None if prompt_cache_mb is None else prompt_cache_mb << 20
        return cls(checkpoint, prompt_cache_bytes=cap)

    @property
    def description(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        matmuls = f", {self.lean.matmul} matmuls" if self.lean is not None else ""
        return (
            f"{self.checkpoint.path.name} ({params / 1e6:.1f}M params, {self.layout}, "
            f"{self.checkpoint.precision}, {self.model.device}{matmuls})"
        )

    def build_prompt(self, params: GenerateParams) -> Prompt:
        extra = {"encode": self.incremental.encode} if self.layout == "fim" else {}
        return LAYOUTS[self.layout](
            self.tokenizer,
            params.prefix,
            params.suffix,
            canvas_length=self.canvas_length,
            old_text=params.old_text,
            instruction=params.instruction,
            **extra,
        )

    @torch.no_grad()
    def prefill(self, params: GenerateParams) -> tuple[CacheStats, float]:
        """Encode the prompt `generate(params)` would encode into the prompt cache, without denoising.

        The same `build_prompt` and `PromptCache.encode` as `generate`, so the next generate of this
        prompt reuses all of it but the one token `encode` always keeps out. Returns (stats, encode
        ms); with the cache disabled there is nothing to keep, so nothing is encoded. Not counted in
        the cache's hit/lookup figures (the worker counts prefills in its totals)."""
        if self.prompt_cache.max_bytes <= 0:
            return CacheStats(), 0.0
        prompt = self.build_prompt(params)
        t0 = time.perf_counter()
        _cache, stats = self.prompt_cache.encode(prompt.ids, count=False)
        return stats, (time.perf_counter() - t0) * 1000

    @torch.no_grad()
    def generate(
        self,
        params: GenerateParams,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_draft: Callable[[str], None] | None = None,
    ) -> Generation:
        """Fill one hole. Raises sampler.DenoiseCancelled if `should_stop` turns true between steps."""
        generator = torch.Generator(device=self.model.device).manual_seed(params.seed)
        prompt = self.build_prompt(params)
        choose_length = self.layout != "fim" and params.old_text is None
        t0 = time.perf_counter()
        pending: list[int] = []
        # (self.lean is read here, not only at load: a caller may switch the lean path off after.)
        if self.fold and self.lean is not None and not choose_length:
            # A keystroke's few new prompt tokens are encoded inside the first step (model/fold.py).
            cache, stats, pending = self.prompt_cache.encode_deferred(prompt.ids, FOLD_MAX_TOKENS)
        else:
            cache, stats = self.prompt_cache.encode(prompt.ids)
        held = len(prompt.ids) - len(pending)
        encode_ms = (time.perf_counter() - t0) * 1000
        if choose_length:
            prompt = self._with_chosen_length(prompt, cache, params, generator)
        produced: list[int] = []
        forwards = canvases = 0
        confidences: list[float] = []
        finished = False
        encoded_ids = list(prompt.ids)
        max_canvases = max(
            1, -(-params.max_tokens // self.canvas_length), len(prompt.initial_canvases)
        )
        t1 = time.perf_counter()
        try:
            while canvases < max_canvases and not finished:
                first = canvases == 0

                def draft(ids: list[int], _step: int, done=produced) -> None:
                    if on_draft is not None:
                        on_draft(
                            self._heal(self._decode(done + self._until_eos(ids)[0]), prompt.healed)
                        )

                result = denoise(
                    self.model,
                    cache,
                    canvas_length=self.canvas_length,
                    settings=params.sampler,
                    generator=generator,
                    initial_canvas=(
                        prompt.initial_canvases[canvases]
                        if canvases < len(prompt.initial_canvases)
                        else None
                    ),
                    pinned=prompt.pinned if first else None,
                    eos_ids=self.eos_ids,
                    should_stop=should_stop,
                    on_draft=draft if on_draft is not None else None,
                    decoder_step=self._step(cache, pending, held),
                )
                pending = []  # the first step encoded them (or raised before: nothing was written)
                canvases += 1
                forwards += result.forwards
                kept, finished = self._until_eos(result.canvas)
                produced.extend(kept)
                confidences.extend(result.confidence[: len(kept) + (1 if finished else 0)])
                if not finished and canvases < max_canvases:
                    # Next canvas: the committed one becomes prompt, as in block diffusion's outer loop.
                    self.prompt_cache.append(cache, encoded_ids, kept)
                    encoded_ids = encoded_ids + kept
        finally:
            # The cached entry is keyed by the prompt alone: drop any committed canvases from it. A
            # RollbackCache rolls back past the sliding window too, so the entry survives multi-canvas fills.
            if cache.get_seq_length() > len(prompt.ids) and not crop_to(cache, len(prompt.ids)):
                self.prompt_cache.clear()
            else:  # a folded encode ran: the entry now holds the whole prompt
                self.prompt_cache.settle(cache, prompt.ids)
        denoise_ms = (time.perf_counter() - t1) * 1000
        text = self._heal(self._decode(produced), prompt.healed)
        counted = len(produced) + (1 if finished else 0)
        return Generation(
            text=text,
            token_ids=produced,
            forwards=forwards,
            canvases=canvases,
            tokens_per_forward=counted / max(forwards, 1),
            mean_confidence=sum(confidences) / max(len(confidences), 1),
            encoded_tokens=stats.encoded_tokens,
            reused_tokens=stats.reused_tokens,
            encode_ms=encode_ms,
            denoise_ms=denoise_ms,
            finished=finished,
        )

    def _step(self, cache, pending: list[int], held: int):
        """The first canvas's decoder step: folded with the prompt's pending tokens where there are
        any (then the lean step encodes them), the lean step, or None (HF's forward)."""
        if self.lean is None:
            return None
        if pending:
            encoder = self.prompt_cache.lean_encoder or LeanEncoder(self.lean)
            return FoldedStep(self.lean, encoder, cache, self.canvas_length, pending, held)
        return self.lean.bind(cache, self.canvas_length)

    def infill(
        self, prefix: str, suffix: str, *, steps: int | None = None, seed: int = 0, **sampler_kwargs
    ) -> Generation:
        """Convenience for evaluation scripts: one hole, default sampler settings unless overridden."""
        sampler = SamplerSettings(**sampler_kwargs)
        if steps is not None:
            sampler = replace(sampler, max_steps=steps)
        return self.generate(
            GenerateParams(prefix=prefix, suffix=suffix, sampler=sampler, seed=seed)
        )

    def _with_chosen_length(
        self, prompt: Prompt, cache, params: GenerateParams, generator
    ) -> Prompt:
        """Without FIM training nothing decides where the middle ends: probe lengths, pin EOS after it."""
        budget = min(self.canvas_length, max(1, params.max_tokens))
        candidates = [budget // 8, budget // 4, budget // 2, budget]
        length = choose_length(
            self.model,
            cache,
            canvas_length=self.canvas_length,
            candidates=candidates,
            eos_id=self.eos_ids[0],
            generator=generator,
        )
        pinned = {pos: self.eos_ids[0] for pos in range(length, self.canvas_length)}
        return replace(prompt, pinned=pinned)

    def _until_eos(self, canvas: list[int]) -> tuple[list[int], bool]:
        for i, token in enumerate(canvas):
            if token in self.eos_ids:
                return canvas[:i], True
        return canvas, False

    @staticmethod
    def _heal(text: str, healed: str) -> str:
        return text[len(healed) :] if healed and text.startswith(healed) else text

    def _decode(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        assert isinstance(text, str), type(text)  # one sequence in, one string out
        return text
