"""K infill candidates: one batched denoise of K rows against one prompt's cache, or K single-row passes.

Boundary: uses an Engine's model, tokenizer, layout and prompt cache (read-only: the batched cache is a
copy) and returns text; it does not touch the engine's single-canvas sampler. For invoked completions: on
an accelerator K rows cost one batched forward per step instead of K forwards; on a CPU a K-row forward
costs about K single-row ones, so K sequential passes through the lean single-row step are faster there
(`batches_rows`; bench/candidates_bench.py measures both side by side). A fill is cut at one canvas.
Rows differ by their noise and, optionally, a pinned length (EOS from L on, the length probe of CAL /
LR-DLLM). Either commit rule of model/sampler.py runs per row: Fast-dLLM's confidence threshold
(arXiv:2505.22618) or DiffusionGemma's entropy bound (arXiv:2505.24857); a row that settles is frozen
while the others go on. Ranking (`best_of`): candidates the caller's `accept` check passes (e.g. the
spliced file parses, SAFIM's syntax-aware filter, arXiv:2403.04814) first, then the mean log-probability
of the committed tokens up to and including the first EOS.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from diffgem_protocol import Candidate, GenerationResult

from .compat import decoder_attention_mask, with_cache
from .engine import Engine, GenerateParams
from .sampler import DenoiseCancelled, SamplerSettings, denoise, temperature_at

# A committed token's probability is positive in exact arithmetic; float underflow may round it to 0.
_TINY = 1e-30


@dataclass
class Ranked:
    text: str
    token_ids: list[int]
    mean_logprob: float
    accepted: bool


@dataclass
class Pick:
    text: str
    index: int  # which candidate won
    candidates: list[Ranked]
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
    pinned: dict[int, int] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`settings.rule` over `rows` canvases at once against one prompt's cache.

    Returns the canvases [rows, C], the log-probability of each position's token when it was
    committed (confidence rule) or at the row's last step (entropy rule) [rows, C], and the number of
    (batched) forwards. `lengths[r]` pins EOS from that position on in row r; `pinned` pins tokens in
    every row. Raises sampler.DenoiseCancelled when `should_stop` turns true between steps.
    """
    device = model.device
    vocab = model.config.text_config.vocab_size
    batched = copy.deepcopy(cache)  # the prompt cache's entry stays batch 1 and untouched
    batched.batch_repeat_interleave(rows)
    prompt_len = batched.get_seq_length()
    current = torch.randint(0, vocab, (rows, canvas_length), device=device, generator=generator)
    pin = torch.zeros((rows, canvas_length), dtype=torch.bool, device=device)
    pin_ids = torch.zeros((rows, canvas_length), dtype=torch.long, device=device)
    for pos, token in (pinned or {}).items():
        pin[:, pos], pin_ids[:, pos] = True, token
    for r, length in enumerate(lengths):
        if length is not None:
            pin[r, length:], pin_ids[r, length:] = True, eos_id
    current = torch.where(pin, pin_ids, current)
    committed = pin.clone()
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
    every = torch.arange(rows, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)  # settled rows are frozen
    history = torch.full((rows, canvas_length), -1, dtype=torch.long, device=device)
    self_conditioning = None
    forwards = 0
    final = current
    for cur_step in reversed(range(1, settings.max_steps + 1)):
        if should_stop():
            raise DenoiseCancelled()
        logits = model(
            decoder_input_ids=current,
            self_conditioning_logits=self_conditioning,
            decoder_attention_mask=mask,
            **with_cache(batched),
            decoder_position_ids=positions,
        ).logits.float()  # [rows, C, V]
        forwards += 1
        processed = logits / temperature_at(settings, cur_step)
        # Pinned positions: one-hot logits, so sampling, acceptance and argmax all keep them.
        onehot = torch.full_like(processed, -math.inf).scatter_(-1, pin_ids[..., None], 0.0)
        processed = torch.where(pin[..., None], onehot, processed)
        logp = torch.log_softmax(processed, dim=-1)
        best_logp, argmax = logp.max(dim=-1)  # [rows, C]
        live = ~done[:, None]
        if settings.rule == "entropy":
            # Per row, as sampler.denoise: accept the lowest-entropy samples while
            # sum(entropy) - max(entropy) <= bound; re-draw the rest from the whole vocabulary.
            entropy = -(logp.exp() * logp.clamp(min=torch.finfo(logp.dtype).min)).sum(-1)
            sampled = torch.multinomial(
                logp.exp().view(-1, vocab), num_samples=1, generator=generator
            ).view(rows, canvas_length)
            sorted_entropy, order = torch.sort(entropy, dim=-1)
            keep = torch.cumsum(sorted_entropy, dim=-1) - sorted_entropy <= settings.entropy_bound
            accepted = torch.scatter(torch.zeros_like(keep), -1, order, keep)
            noise = torch.randint(0, vocab, current.shape, device=device, generator=generator)
            stepped = torch.where(accepted, sampled, noise)
            stepped = torch.where(pin, pin_ids, stepped)
            current = torch.where(live, stepped, current)
            final = torch.where(live, argmax, final)
            logprob = torch.where(live, best_logp, logprob)
            stable = (history == argmax).all(dim=-1) | (settings.stability_threshold == 0)
            history = argmax
            quiet = entropy.mean(dim=-1) < settings.stop_entropy
            done |= stable & quiet
        else:
            # Fast-dLLM: every open position at or above the threshold is committed, at least one
            # per unfinished row, as the single-canvas sampler does.
            open_logp = torch.where(committed, torch.full_like(best_logp, -math.inf), best_logp)
            newly = (open_logp >= math.log(settings.confidence_threshold)) & ~committed & live
            force = torch.zeros_like(newly)
            force[every, open_logp.argmax(dim=-1)] = (
                ~done & ~committed.all(dim=-1) & ~newly.any(dim=-1)
            )
            newly |= force
            current = torch.where(newly, argmax, current)
            logprob = torch.where(newly, best_logp, logprob)
            committed |= newly
            final = torch.where(live, torch.where(committed, current, argmax), final)
            for r in range(rows):
                if not bool(done[r]) and _settled(committed[r], final[r], eos_id):
                    done[r] = True
            noise = torch.randint(0, vocab, current.shape, device=device, generator=generator)
            current = torch.where(committed | ~live, current, noise)
        if bool(done.all()):
            break
        self_conditioning = processed.to(embed_dtype)
    return final, logprob, forwards


def _settled(committed: torch.Tensor, canvas: torch.Tensor, eos_id: int) -> bool:
    eos = (canvas == eos_id) & committed
    if not bool(eos.any()):
        return bool(committed.all())
    first = int(eos.nonzero()[0])
    return bool(committed[:first].all())


def row_lengths(engine: Engine, params: GenerateParams, rows: int) -> list[int | None]:
    """Per row, where EOS is pinned from: none with the `fim` layout (the model's EOS decides the
    length) or for an edit; otherwise the length probe's candidates spread over the rows (the layout
    has nothing that decides where the middle ends, Engine._with_chosen_length)."""
    if engine.layout == "fim" or params.old_text is not None:
        return [None] * rows
    budget = min(engine.canvas_length, max(1, params.max_tokens))
    probe = [budget, budget // 2, budget // 4, budget // 8]
    return [max(1, probe[r % len(probe)]) for r in range(rows)]


def batches_rows(engine: Engine) -> bool:
    """Whether K candidates run as one batched denoise (an accelerator: K rows cost about one row's
    step) or as K single-row passes (a CPU: a K-row step costs about K steps, and only a single row
    takes the lean decoder step, model/fast_decoder.py; bench/candidates_results.md measures both).
    DIFFGEM_BATCHED_CANDIDATES=1/0 forces one way (A/B runs)."""
    forced = os.environ.get("DIFFGEM_BATCHED_CANDIDATES")
    if forced in ("0", "1"):
        return forced == "1"
    return engine.model.device.type != "cpu"


def generate_candidates(
    engine: Engine, params: GenerateParams, *, should_stop: Callable[[], bool] = lambda: False
) -> GenerationResult:
    """The wire's candidates request (params.candidates = K): K fills of one hole, each with its mean
    log-probability, in row order. One batched denoise where batching is cheap, else K sequential
    passes (`batches_rows`); the server deduplicates and ranks either (canvas/candidates.py)."""
    if batches_rows(engine):
        return generate_candidates_batched(engine, params, should_stop=should_stop)
    return generate_candidates_sequential(engine, params, should_stop=should_stop)


@torch.no_grad()
def generate_candidates_sequential(
    engine: Engine, params: GenerateParams, *, should_stop: Callable[[], bool] = lambda: False
) -> GenerationResult:
    """K single-row denoises of the first canvas against one encode of the prompt, row r from seed
    params.seed + r: row r is what `Engine.generate` with that seed fills in its first canvas (the
    server's fallback for backends without batching, edit_pipelines._candidate_fills, asks for the
    same). The prompt is encoded once and the lean step bound once, so K rows cost one encode and
    their forwards. A row's score is the mean log-probability of its kept tokens and EOS when
    committed, as `denoise_batch` reports it. The result is row 0's text with the whole request's
    figures, and every row in `candidates`."""
    prompt = engine.build_prompt(params)
    t0 = time.perf_counter()
    cache, stats = engine.prompt_cache.encode(prompt.ids)
    encode_ms = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    step = engine.lean.bind(cache, engine.canvas_length) if engine.lean else None
    eos = engine.eos_ids[0]
    found: list[Candidate] = []
    forwards = 0
    for r, length in enumerate(row_lengths(engine, params, params.candidates)):
        pinned = dict(prompt.pinned or {})
        if length is not None:  # layouts without an EOS that decides the length: the probe's rows
            pinned |= {pos: eos for pos in range(length, engine.canvas_length)}
        result = denoise(
            engine.model,
            cache,
            canvas_length=engine.canvas_length,
            settings=params.sampler,
            generator=torch.Generator(device=engine.model.device).manual_seed(params.seed + r),
            initial_canvas=prompt.initial_canvases[0] if prompt.initial_canvases else None,
            pinned=pinned,
            eos_ids=engine.eos_ids,
            should_stop=should_stop,
            decoder_step=step,
        )
        forwards += result.forwards
        ids, finished = engine._until_eos(result.canvas)
        counted = result.confidence[: len(ids) + (1 if finished else 0)]
        mean = statistics.fmean(math.log(max(c, _TINY)) for c in counted) if counted else -math.inf
        found.append(
            Candidate(engine._heal(engine._decode(ids), prompt.healed), ids, mean, finished)
        )
    denoise_ms = (time.perf_counter() - t1) * 1000
    return _result(found, forwards, stats, encode_ms, denoise_ms)


def _result(
    found: list[Candidate], forwards: int, stats, encode_ms: float, denoise_ms: float
) -> GenerationResult:
    """Row 0's fill as the result's text, every row in `candidates`."""
    head = found[0]
    counted = len(head.token_ids) + (1 if head.finished else 0)
    return GenerationResult(
        text=head.text,
        token_ids=head.token_ids,
        forwards=forwards,
        canvases=1,
        tokens_per_forward=counted / max(forwards, 1),
        mean_confidence=math.exp(head.mean_logprob) if counted else 0.0,
        encoded_tokens=stats.encoded_tokens,
        reused_tokens=stats.reused_tokens,
        encode_ms=encode_ms,
        denoise_ms=denoise_ms,
        finished=head.finished,
        candidates=found,
    )


@torch.no_grad()
def generate_candidates_batched(
    engine: Engine, params: GenerateParams, *, should_stop: Callable[[], bool] = lambda: False
) -> GenerationResult:
    """K fills of one hole from one batched denoise of the first canvas: every row draws its noise
    from one generator seeded with params.seed. A fill longer than one canvas is cut there
    (finished=False): later canvases would need each row's own prompt continuation. The result is row
    0's, with every row in `candidates`."""
    rows = params.candidates
    prompt = engine.build_prompt(params)
    t0 = time.perf_counter()
    cache, stats = engine.prompt_cache.encode(prompt.ids)
    encode_ms = (time.perf_counter() - t0) * 1000
    t1 = time.perf_counter()
    canvas, logprob, forwards = denoise_batch(
        engine.model,
        cache,
        rows=rows,
        canvas_length=engine.canvas_length,
        settings=params.sampler,
        generator=torch.Generator(device=engine.model.device).manual_seed(params.seed),
        eos_id=engine.eos_ids[0],
        lengths=row_lengths(engine, params, rows),
        pinned=prompt.pinned,
        should_stop=should_stop,
    )
    denoise_ms = (time.perf_counter() - t1) * 1000
    found = []
    for r in range(rows):
        ids, finished = engine._until_eos(canvas[r].tolist())
        counted = len(ids) + (1 if finished else 0)
        mean = float(logprob[r, :counted].mean()) if counted else -math.inf
        text = engine._heal(engine._decode(ids), prompt.healed)
        found.append(Candidate(text, ids, mean, finished))
    return _result(found, forwards, stats, encode_ms, denoise_ms)


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
        candidates.append(Ranked(text, ids, mean, accept(text)))
    order = sorted(
        range(k), key=lambda r: (not candidates[r].accepted, -candidates[r].mean_logprob)
    )
    return Pick(candidates[order[0]].text, order[0], candidates, forwards)
