"""The denoising loop: one canvas from uniform noise (or an initial guess) to text, step by step.

Owned by the engine rather than hidden in `generate()`, so that it can check a cancel flag between steps,
report drafts, pin tokens and commit several tokens per forward. With `rule="entropy"` it reproduces
transformers' `DiffusionGemmaForBlockDiffusion.generate()` token for token under the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.cache_utils import Cache

# The sampler's knobs are defined once, in the wire protocol, and re-exported here.
from diffgem_protocol import SamplerSettings

from .compat import decoder_attention_mask as decoder_attention_mask_for
from .compat import with_cache


@dataclass
class DenoiseResult:
    canvas: list[int]  # the committed canvas (argmax where nothing was committed)
    confidence: list[float]  # per position, probability of the committed token at its last step
    forwards: int
    cancelled: bool = False


class DenoiseCancelled(Exception):
    """Raised between steps when the caller's cancel check says stop."""


def temperature_at(settings: SamplerSettings, cur_step: int) -> float:
    """Linear schedule t_max -> t_min; `cur_step` counts the steps *remaining* (N..1), as in transformers."""
    return settings.t_min + (settings.t_max - settings.t_min) * (cur_step / settings.max_steps)


def _decoder_inputs(model, cache: Cache, canvas: torch.Tensor) -> tuple[dict, torch.Tensor]:
    prompt_len = cache.get_seq_length()
    canvas_length = canvas.shape[1]
    decoder_attention_mask = torch.ones(
        (1, prompt_len + canvas_length), dtype=torch.bool, device=canvas.device
    )
    mask_mapping = decoder_attention_mask_for(model, cache, canvas, decoder_attention_mask)
    positions = torch.arange(
        prompt_len, prompt_len + canvas_length, dtype=torch.int32, device=canvas.device
    ).unsqueeze(0)
    return mask_mapping, positions


def _clamp_pinned(logits: torch.Tensor, pinned: dict[int, int]) -> torch.Tensor:
    """One-hot logits at pinned positions, so sampling, acceptance and argmax all keep them."""
    if not pinned:
        return logits
    logits = logits.clone()
    for pos, token in pinned.items():
        logits[:, pos, :] = float("-inf")
        logits[:, pos, token] = 0.0
    return logits


def denoise(
    model,
    cache: Cache,
    *,
    canvas_length: int,
    settings: SamplerSettings,
    generator: torch.Generator | None = None,
    initial_canvas: list[int] | None = None,
    pinned: dict[int, int] | None = None,
    eos_ids: tuple[int, ...] = (),
    should_stop: Callable[[], bool] = lambda: False,
    on_draft: Callable[[list[int], int], None] | None = None,
    decoder_step: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None,
) -> DenoiseResult:
    """Denoise one canvas against the encoder cache (which this function never modifies).

    `decoder_step(canvas, self_conditioning_logits) -> logits` stands in for the model's forward when
    given (fast_decoder.LeanStep, proven equal to it); otherwise the model itself is called.
    """
    device = model.device
    vocab_size = model.config.text_config.vocab_size
    pinned = pinned or {}
    # Noise is drawn even when an initial canvas is given, as generate() does, so that both consume
    # the generator identically.
    current = torch.randint(
        0, vocab_size, (1, canvas_length), device=device, generator=generator
    )  # [1, C]
    if initial_canvas is not None:
        assert len(initial_canvas) == canvas_length, (len(initial_canvas), canvas_length)
        current = torch.tensor([initial_canvas], dtype=torch.long, device=device)
    for pos, token in pinned.items():
        current[0, pos] = token
    # HF's forward needs the mask and positions; a given step (the lean one) has its own.
    mask_mapping, positions = (
        _decoder_inputs(model, cache, current) if decoder_step is None else (None, None)
    )
    embed_dtype = model.model.decoder.embed_tokens.weight.dtype

    committed = torch.zeros((1, canvas_length), dtype=torch.bool, device=device)  # confidence rule
    for pos in pinned:
        committed[0, pos] = True
    history: torch.Tensor | None = None
    self_conditioning = None
    argmax = current
    confidence = torch.zeros((1, canvas_length), device=device)
    forwards = 0
    for cur_step in reversed(range(1, settings.max_steps + 1)):
        if should_stop():
            raise DenoiseCancelled()
        if decoder_step is not None:
            logits = decoder_step(current, self_conditioning)  # [1, C, V] float32
        else:
            logits = model(
                decoder_input_ids=current,
                self_conditioning_logits=self_conditioning,
                decoder_attention_mask=mask_mapping,
                **with_cache(cache),
                decoder_position_ids=positions,
            ).logits  # [1, C, V] float32
        forwards += 1
        processed = _clamp_pinned(logits / temperature_at(settings, cur_step), pinned)

        if settings.rule == "entropy":
            # DiffusionGemma's entropy-bound sampler (arXiv:2505.24857): accept the k lowest-entropy
            # samples while sum(entropy) - max(entropy) <= bound; re-draw the rest uniformly.
            entropy, new_argmax, sampled, confidence = _entropy_rule_stats(processed, generator)
            sorted_entropy, order = torch.sort(entropy, dim=-1)
            keep_sorted = (
                torch.cumsum(sorted_entropy, dim=-1) - sorted_entropy <= settings.entropy_bound
            )
            accepted = torch.scatter(torch.zeros_like(keep_sorted), -1, order, keep_sorted)
            noise = torch.randint(
                0, vocab_size, (1, canvas_length), device=device, generator=generator
            )
            current = torch.where(accepted, sampled, current)
            current = torch.where(~accepted, noise, current)
            final = new_argmax
        else:
            # Fast-dLLM's parallel commit: every uncommitted position whose argmax probability is at
            # least tau is committed (at least one per step); committed positions stay fixed.
            step_conf, new_argmax, entropy = _confidence_rule_stats(processed, generator)
            open_conf = torch.where(committed, torch.full_like(step_conf, -1.0), step_conf)
            newly = (open_conf >= settings.confidence_threshold) & ~committed
            if not newly.any():
                newly = torch.zeros_like(committed)
                newly[0, int(open_conf.argmax())] = True
            current = torch.where(newly, new_argmax, current)
            confidence = torch.where(newly, step_conf, confidence)
            committed |= newly
            final = torch.where(committed, current, new_argmax)
            noise = torch.randint(
                0, vocab_size, (1, canvas_length), device=device, generator=generator
            )
            current = torch.where(committed, current, noise)
            if _settled(committed[0], final[0], eos_ids):
                argmax = final
                break

        if on_draft is not None:
            on_draft(final[0].tolist(), forwards)
        # Stable-and-confident early stop, as DiffusionGemma's generation config defines it.
        if settings.stability_threshold == 0:
            stable = True
        else:
            if history is None:
                history = torch.full(
                    (settings.stability_threshold, 1, canvas_length),
                    -1,
                    dtype=torch.long,
                    device=device,
                )
            stable = bool((history == new_argmax[None]).all())
            history = torch.roll(history, shifts=-1, dims=0)
            history[-1] = new_argmax
        argmax = final
        if stable and float(entropy.mean()) < settings.stop_entropy:
            break
        self_conditioning = processed.to(embed_dtype)
    return DenoiseResult(
        canvas=argmax[0].tolist(), confidence=confidence[0].tolist(), forwards=forwards
    )


# Canvas positions processed at once. Each step's statistics need a few fp32 temporaries the size of the
# logits they read (log-probabilities, probabilities, the exponential noise inside `multinomial`); tiling
# bounds those by [TILE_ROWS x vocab] instead of [canvas x vocab] — 256 MiB each for DiffusionGemma's
# 256 x 262,144 canvas. Every statistic is per row, so tiles change no value.
TILE_ROWS = 16
TILE_ROWS_CUDA = 64  # fewer kernel launches per step; 64 MiB temporaries at full size


def _tiles(processed: torch.Tensor, rows: int | None = None) -> list[torch.Tensor]:
    step = rows or (TILE_ROWS_CUDA if processed.is_cuda else TILE_ROWS)
    return [processed[:, i : i + step] for i in range(0, processed.shape[1], step)]


def _entropy_rule_stats(
    processed: torch.Tensor, generator: torch.Generator | None, rows: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entropy, argmax, one sample and the argmax probability per position ([1, C] each), tile by tile.

    `multinomial` with one sample draws exponential noise row by row (PyTorch's fast path for a single
    sample), so on the CPU tiles consume the generator exactly as one call over the canvas does and the
    sampler stays token-for-token equal to transformers' `generate()` (tests/unit/test_engine.py). On
    CUDA, Philox offsets advance per call: samples keep their distribution, not generate()'s exact draws.
    """
    parts: list[tuple[torch.Tensor, ...]] = []
    for tile in _tiles(processed, rows):
        entropy = torch.distributions.Categorical(logits=tile).entropy()  # [1, T]
        argmax = torch.argmax(tile, dim=-1)  # [1, T]
        probs = torch.softmax(tile, dim=-1, dtype=torch.float32)
        sampled = torch.multinomial(
            probs.view(-1, probs.shape[-1]), num_samples=1, generator=generator
        ).view(1, -1)
        confidence = probs.gather(-1, argmax.unsqueeze(-1)).squeeze(-1)
        del probs
        parts.append((entropy, argmax, sampled, confidence))
    columns = [torch.cat(column, dim=1) for column in zip(*parts, strict=True)]
    return columns[0], columns[1], columns[2], columns[3]


def _confidence_rule_stats(
    processed: torch.Tensor, generator: torch.Generator | None, rows: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_step_stats` over tiles; the fused CUDA kernel already reads the logits once, untiled."""
    if processed.is_cuda and _kernels_available():
        return _step_stats(processed, generator)
    parts = [_step_stats(tile, generator) for tile in _tiles(processed, rows)]
    columns = [torch.cat(column, dim=1) for column in zip(*parts, strict=True)]
    return columns[0], columns[1], columns[2]


def _step_stats(
    processed: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Confidence, argmax and entropy of each canvas position ([1, C] each).

    On CUDA the fused Triton kernel reads the [C, V] logits once for all three (kernels/sampling.py);
    elsewhere plain torch computes them.
    """
    if processed.is_cuda and _kernels_available():
        from diffgem_kernels import sampling_step

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=processed.device))
        stats = sampling_step(processed[0], 1.0, None, seed=seed)
        return stats.confidence[None], stats.argmax[None], stats.entropy[None]
    probs = torch.softmax(processed, dim=-1, dtype=torch.float32)
    confidence, argmax = probs.max(dim=-1)
    return confidence, argmax, _entropy(processed, probs)


def _entropy(processed: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Categorical(logits=processed).entropy() from the probabilities already computed: one
    log-softmax pass instead of the distribution's own normalise/validate/softmax (~4x less CPU over
    [C, V]); -inf logits (pinned positions) are clamped as torch.distributions does, so 0·log 0 = 0."""
    logp = torch.log_softmax(processed.float(), dim=-1)
    return -(probs * logp.clamp(min=torch.finfo(logp.dtype).min)).sum(-1)


def _kernels_available() -> bool:
    try:
        from diffgem_kernels import triton_available
    except ImportError:
        return False
    return bool(triton_available())


def _settled(committed: torch.Tensor, canvas: torch.Tensor, eos_ids: tuple[int, ...]) -> bool:
    """Done when every position up to the first committed EOS is committed: the rest is padding."""
    if bool(committed.all()):
        return True
    if not eos_ids:
        return False
    is_eos = committed & torch.isin(canvas, torch.tensor(eos_ids, device=canvas.device))
    if not bool(is_eos.any()):
        return False
    first = int(is_eos.nonzero()[0])
    return bool(committed[:first].all())


@torch.no_grad()
def choose_length(
    model,
    cache: Cache,
    *,
    canvas_length: int,
    candidates: list[int],
    eos_id: int,
    generator: torch.Generator | None = None,
    length_bonus: float = 0.05,
) -> int:
    """Training-free length choice for layouts whose canvas length is not decided by an EOS (CAL, LR-DLLM).

    For each candidate length L, one forward from noise with EOS pinned from L on; the score is the mean
    log-confidence of the first L positions plus `length_bonus * log(L)` — mean confidence alone favours
    the shortest canvas, since a few positions are easier to be sure of than many.
    """
    vocab_size = model.config.text_config.vocab_size
    best, best_score = canvas_length, float("-inf")
    for length in sorted(set(min(max(1, c), canvas_length) for c in candidates)):
        noise = torch.randint(
            0, vocab_size, (1, canvas_length), device=model.device, generator=generator
        )
        noise[0, length:] = eos_id
        mask_mapping, positions = _decoder_inputs(model, cache, noise)
        logits = model(
            decoder_input_ids=noise,
            decoder_attention_mask=mask_mapping,
            **with_cache(cache),
            decoder_position_ids=positions,
        ).logits[0, :length]  # [L, V]
        confidence = torch.log_softmax(logits.float(), dim=-1).max(dim=-1).values  # [L]
        score = float(confidence.mean()) + length_bonus * float(
            torch.log(torch.tensor(float(length)))
        )
        if score > best_score:
            best, best_score = length, score
    return best
