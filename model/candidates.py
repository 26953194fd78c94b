"""K infill candidates in one batched denoising pass, re-ranked by a caller's check and mean log-probability.

Boundary: uses an Engine's model, tokenizer, layout and prompt cache (read-only) and returns text; it does not
touch the engine's single-canvas sampler. For invoked completions only: K rows cost one batched forward per
step instead of one. Candidates differ by their noise seed and, optionally, a pinned length (EOS from L on,
the length probe of CAL / LR-DLLM). Ranking: candidates the caller's `accept` check passes (e.g. the spliced
file parses, SAFIM's syntax-aware filter, arXiv:2403.04814) first, then the mean log-probability of the
committed tokens up to and including the first EOS.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .compat import decoder_attention_mask, with_cache
from .engine import Engine, GenerateParams
from .sampler import SamplerSettings, temperature_at


@dataclass
class Candidate:
    text: str
    token_ids: list[int]
    mean_logprob: float
    accepted: bool


@dataclass
class Pick:
    text: str
    index: int  # which candidate won
    candidates: list[Candidate]
    forwards: int


@torch.no_grad()
def denoise_batch(
    model,
    cache,
    *,
    rows: int,
    canvas_length: int,
    settings: SamplerSettings,
    generator: torch.Generator,
    eos_id: int,
    lengths: Sequence[int | None] = (),
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fast-dLLM's confidence rule over `rows` canvases at once against one prompt's cache.

    Returns the committed canvases [rows, C], the log-probability each position had when committed
    [rows, C], and the number of (batched) forwards. `lengths[r]` pins EOS from that position on in row r.
    """
    device = model.device
    vocab = model.config.text_config.vocab_size
    batched = copy.deepcopy(cache)  # the prompt cache's entry stays batch 1 and untouched
    batched.batch_repeat_interleave(rows)
    prompt_len = batched.get_seq_length()
    current = torch.randint(0, vocab, (rows, canvas_length), device=device, generator=generator)
    committed = torch.zeros((rows, canvas_length), dtype=torch.bool, device=device)
    pin = torch.zeros_like(committed)
    for r, length in enumerate(lengths):
        if length is not None:
            pin[r, length:] = True
    current = torch.where(pin, eos_id, current)
    committed |= pin
    logprob = torch.zeros((rows, canvas_length), device=device)
    # Through compat: transformers 5.24 renamed this helper's cache argument with no alias.
    mask = decoder_attention_mask(
        model,
        batched,
        current,
        torch.ones((rows, prompt_len + canvas_length), dtype=torch.bool, device=device),
    )
    positions = torch.arange(prompt_len, prompt_len + canvas_length, device=device).expand(rows, -1)
    embed_dtype = model.model.decoder.embed_tokens.weight.dtype
    self_conditioning = None
    forwards = 0
    final = current
    for cur_step in reversed(range(1, settings.max_steps + 1)):
        logits = model(
            decoder_input_ids=current,
            self_conditioning_logits=self_conditioning,
            decoder_attention_mask=mask,
            **with_cache(batched),
            decoder_position_ids=positions,
        ).logits.float()  # [rows, C, V]
        forwards += 1
        processed = logits / temperature_at(settings, cur_step)
        processed = torch.where(pin[..., None], torch.full_like(processed, -1e9), processed)
        processed[..., eos_id] = torch.where(pin, 0.0, processed[..., eos_id])
        logp = torch.log_softmax(processed, dim=-1)
        best_logp, argmax = logp.max(dim=-1)  # [rows, C]
        open_logp = torch.where(committed, torch.full_like(best_logp, -math.inf), best_logp)
        newly = (open_logp >= math.log(settings.confidence_threshold)) & ~committed
        # At least one new position per unfinished row, as the single-canvas sampler does.
        top = open_logp.argmax(dim=-1)
        unfinished = ~committed.all(dim=-1)
        force = torch.zeros_like(newly)
        force[torch.arange(rows, device=device), top] = unfinished & ~newly.any(dim=-1)
        newly |= force
        current = torch.where(newly, argmax, current)
        logprob = torch.where(newly, best_logp, logprob)
        committed |= newly
        final = torch.where(committed, current, argmax)
        if all(_settled(committed[r], final[r], eos_id) for r in range(rows)):
            break
        noise = torch.randint(0, vocab, current.shape, device=device, generator=generator)
        current = torch.where(committed, current, noise)
        self_conditioning = processed.to(embed_dtype)
    return final, logprob, forwards


def _settled(committed: torch.Tensor, canvas: torch.Tensor, eos_id: int) -> bool:
    eos = (canvas == eos_id) & committed
    if not bool(eos.any()):
        return bool(committed.all())
    first = int(eos.nonzero()[0])
    return bool(committed[:first].all())


def best_of(
    engine: Engine,
    prefix: str,
    suffix: str,
    *,
    k: int = 4,
    settings: SamplerSettings | None = None,
    lengths: Sequence[int | None] = (),
    accept: Callable[[str], bool] = lambda _text: True,
    seed: int = 0,
) -> Pick:
    """Fill one hole K ways in one batched pass and return the best-ranked candidate."""
    if settings is None:
        defaults = (
            engine.sampler_defaults()
        )  # the checkpoint's own temperature schedule, if it has one
        settings = SamplerSettings(
            rule="confidence",
            max_steps=8,
            t_max=defaults.get("t_max", 0.3),
            t_min=defaults.get("t_min", 0.1),
        )
    prompt = engine.build_prompt(GenerateParams(prefix=prefix, suffix=suffix))
    cache, _stats = engine.prompt_cache.encode(prompt.ids)
    eos = engine.eos_ids[0]
    canvas, logprob, forwards = denoise_batch(
        engine.model,
        cache,
        rows=k,
        canvas_length=engine.canvas_length,
        settings=settings,
        generator=torch.Generator(device=engine.model.device).manual_seed(seed),
        eos_id=eos,
        lengths=list(lengths) + [None] * (k - len(lengths)),
    )
    candidates = []
    for r in range(k):
        ids, finished = engine._until_eos(canvas[r].tolist())
        counted = len(ids) + (1 if finished else 0)
        mean = float(logprob[r, :counted].mean()) if counted else -math.inf
        text = engine._heal(engine._decode(ids), prompt.healed)
        candidates.append(Candidate(text, ids, mean, accept(text)))
    order = sorted(
        range(k), key=lambda r: (not candidates[r].accepted, -candidates[r].mean_logprob)
    )
    return Pick(candidates[order[0]].text, order[0], candidates, forwards)
