"""Several holes of one unit denoised together in one canvas, the known code between them pinned.

Boundary: the engine's side of the wire's multi-hole request (diffgem_protocol: `segments`,
`hole_tokens` -> `fills`); uses an Engine's tokenizer, prompt layout, prompt cache and the sampler's
`denoise`, and changes none of them. The layout is the one diffgem_lsp/canvas/multihole.py documents:
one FIM prompt (the document before the first hole, after the last), and one canvas of C positions
holding, for each hole i, b_i free positions then the tokens of segments[i] pinned, and free EOS
padding after the last hole; b_i = min(hole_tokens[i], (C - pinned - 1) // holes). Hole i's fill is
its span decoded up to its first EOS. Pinned spans are the insertion constraint of SAFIM-style
multi-span infill (arXiv:2403.04814); the sampler clamps them to one-hot logits every step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffgem_protocol import GenerateParams, GenerationResult

from .engine import Engine
from .sampler import denoise


class CanvasTooSmall(ValueError):
    """The segments leave fewer than 2 free positions per hole in one canvas."""


@dataclass(frozen=True)
class HoleLayout:
    spans: list[tuple[int, int]]  # per hole: canvas positions [start, end) it may fill
    heals: list[str]  # per hole: text its fill starts with that the prompt/segment held back
    pinned: dict[int, int]  # canvas position -> token id of a segment


def layout_holes(engine: Engine, params: GenerateParams, healed: str) -> HoleLayout:
    """Where each hole's free positions and each segment's pinned tokens sit in the canvas."""
    assert params.segments is not None and params.hole_tokens is not None
    segments: list[list[int]] = []
    heals = [healed]
    for segment in params.segments:
        # Token healing, as the fim layout does for the prefix: a segment ending in a space pins all
        # but that space, which byte-level BPE attaches to the next hole's first word.
        held = " " if segment.endswith(" ") else ""
        text = segment[: len(segment) - len(held)]
        segments.append(engine.tokenizer(text, add_special_tokens=False).input_ids)
        heals.append(held)
    holes = len(params.hole_tokens)
    free = engine.canvas_length - sum(len(s) for s in segments) - 1  # one EOS after the last hole
    share = free // holes
    if share < 2:
        raise CanvasTooSmall(
            f"{holes} holes and {sum(len(s) for s in segments)} pinned tokens leave {share} "
            f"positions per hole in a {engine.canvas_length}-token canvas"
        )
    spans, pinned, pos = [], {}, 0
    for i, budget in enumerate(params.hole_tokens):
        width = min(budget, share)
        spans.append((pos, pos + width))
        pos += width
        if i < len(segments):
            for token in segments[i]:
                pinned[pos] = token
                pos += 1
    return HoleLayout(spans, heals, pinned)


@torch.no_grad()
def generate_holes(
    engine: Engine, params: GenerateParams, *, should_stop: Callable[[], bool] = lambda: False
) -> GenerationResult:
    """Fill every hole of a multi-hole request in one denoising pass. When the segments do not fit one
    canvas the result has `fills` None and nothing denoised (the server then fills the holes one at a
    time). Raises sampler.DenoiseCancelled when `should_stop` turns true between steps."""
    prompt = engine.build_prompt(
        GenerateParams(prefix=params.prefix, suffix=params.suffix, sampler=params.sampler)
    )
    try:
        layout = layout_holes(engine, params, prompt.healed)
    except CanvasTooSmall as exc:
        return _not_run(str(exc))
    t0 = time.perf_counter()
    cache, stats = engine.prompt_cache.encode(prompt.ids)
    encode_ms = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    result = denoise(
        engine.model,
        cache,
        canvas_length=engine.canvas_length,
        settings=params.sampler,
        generator=torch.Generator(device=engine.model.device).manual_seed(params.seed),
        pinned=layout.pinned,
        eos_ids=engine.eos_ids,
        should_stop=should_stop,
    )
    denoise_ms = (time.perf_counter() - t1) * 1000
    fills, ids, confidences, finished = [], [], [], True
    for (start, end), heal in zip(layout.spans, layout.heals, strict=True):
        kept, ended = engine._until_eos(result.canvas[start:end])
        finished = finished and ended
        fills.append(engine._heal(engine._decode(kept), heal))
        ids += kept
        confidences += result.confidence[start : start + len(kept) + (1 if ended else 0)]
    return GenerationResult(
        text="".join(fills),
        token_ids=ids,
        forwards=result.forwards,
        canvases=1,
        tokens_per_forward=len(confidences) / max(result.forwards, 1),
        mean_confidence=sum(confidences) / max(len(confidences), 1),
        encoded_tokens=stats.encoded_tokens,
        reused_tokens=stats.reused_tokens,
        encode_ms=encode_ms,
        denoise_ms=denoise_ms,
        finished=finished,
        fills=fills,
    )


def _not_run(reason: str) -> GenerationResult:
    """A multi-hole answer that filled nothing: `fills` None says so (and `text` why, for the log)."""
    return GenerationResult(
        text=reason,
        token_ids=[],
        forwards=0,
        canvases=0,
        tokens_per_forward=0.0,
        mean_confidence=0.0,
        encoded_tokens=0,
        reused_tokens=0,
        encode_ms=0.0,
        denoise_ms=0.0,
        finished=False,
        fills=None,
    )
