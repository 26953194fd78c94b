"""The diffusion-native pipelines: fill a unit's holes, repair a syntax error, several candidates for a cursor.

Like pipelines.py (whose helpers they share): document -> canvas (pure, canvas/) -> backend -> pure
post-processing -> plain results in the client's position encoding. No LSP types are built here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams

from diffgem_protocol import GenerateParams, GenerationResult

from . import canvas as C
from .canvas.candidates import rank_candidates
from .pipelines import (
    Infill,
    Rewrite,
    _from_character,
    _generate,
    _to_position,
    infill_request,
    sampler_settings,
    to_client_encoding,
)
from .session import Session

log = logging.getLogger("diffgem.edit_pipelines")

# Edit-canvas seeds tried per repair after the rest-of-line infills: a small model mostly copies
# the old text back (bench/repair_results.md), and each seed is one more canvas.
REPAIR_SEEDS = 2
# A hole's fill on the embedded 32-token canvas: two canvases at most (block holes ask 128).
HOLE_MAX_TOKENS = 64


def _current(session: Session, uri: str, version: int | None, what: str) -> tuple[str, str]:
    """The document's text and language, refusing a stale action or a file we do not touch."""
    doc = session.document(uri)
    if version is not None and doc.version is not None and doc.version != version:
        raise JsonRpcContentModified("document changed since the code action was listed")
    if (reason := session.too_big_or_binary(doc)) is not None:
        raise JsonRpcInvalidParams(f"diffgem: cannot {what}: {reason}")
    return doc.source, doc.language_id or ""


async def fill_holes(
    session: Session, uri: str, start: tuple[int, int], end: tuple[int, int], version: int | None
) -> Rewrite | None:
    """Fill the placeholders of the units touching the range. Per unit, where the backend has it, one
    canvas with every hole and the code between them pinned (the wire's multi-hole request,
    model/multihole.py); each hole that pass leaves unfilled (its fill rejected by the post-processing)
    is then infilled alone with the code around it, the other placeholders in place. The unit's fills
    are post-processed together (canvas/multihole.py). bench/holes_results.md measures the three."""
    text, language = _current(session, uri, version, "fill holes")
    first, last = _to_position(session, text, *start), _to_position(session, text, *end)
    canvases = C.build_multihole_canvases(text, language, first, last)
    edits: list[C.TextEditData] = []
    result: GenerationResult | None = None
    settings = session.settings
    sampler = sampler_settings(settings, automatic=False)
    for canvas in canvases:
        fills: list[str | None] = [None] * len(canvas.holes)
        if batches(session) and len(canvas.holes) > 1:
            joint = await _generate(
                session,
                GenerateParams(
                    prefix=canvas.prefix,
                    suffix=canvas.suffix,
                    segments=canvas.segments,
                    hole_tokens=canvas.max_tokens,
                    sampler=sampler,
                    seed=settings.seed,
                ),
                f"fill {len(canvas.holes)} holes jointly",
            )
            if joint.fills is not None:
                result = joint
                kept = C.postprocess_multihole(canvas, list(joint.fills)).filled
                fills = [f if ok else None for f, ok in zip(joint.fills, kept, strict=True)]
            else:
                log.info("holes one at a time: %s", joint.text)
        for i, hole in enumerate(canvas.holes):
            if fills[i] is not None:
                continue
            params = GenerateParams(
                prefix=canvas.text[: hole.start] + hole.lead,
                suffix=canvas.text[hole.end :],
                max_tokens=min(HOLE_MAX_TOKENS, canvas.max_tokens[i]),
                sampler=sampler,
                seed=settings.seed,
            )
            result = await _generate(session, params, f"fill hole {i + 1}/{len(canvas.holes)}")
            fills[i] = result.text
        edits += C.postprocess_multihole(canvas, fills).edits
    if not edits or result is None:
        return None
    return Rewrite(to_client_encoding(text, edits, session.position_encoding), version, result)


async def repair(
    session: Session, uri: str, line: int, character: int, version: int | None
) -> Rewrite | None:
    """Repair the syntax error at the position: rest-of-line infills at the faulty line's end and
    last tokens (canvas/repair.repair_cuts), then the smallest statement around it re-denoised from
    its current text; the first candidate that makes the file parse better (check_repair) wins.
    None if none does: the action is then shown disabled, never applied."""
    text, language = _current(session, uri, version, "repair")
    position = _to_position(session, text, line, character)
    canvases = C.build_repair_canvases(text, language, position)
    if not canvases:
        return None
    canvas = canvases[0]
    settings = session.settings
    sampler = sampler_settings(settings, automatic=False)
    attempts: list[tuple[GenerateParams, int | None]] = []
    for point in C.repair_cuts(text, canvas):
        line_end = text.find("\n", point)
        suffix = text[len(text) if line_end < 0 else line_end :]
        params = GenerateParams(
            prefix=text[:point],
            suffix=suffix,
            max_tokens=C.MAX_TOKENS["line"],
            sampler=sampler,
            seed=settings.seed,
        )
        attempts.append((params, point))
    for seed in range(REPAIR_SEEDS):
        params = GenerateParams(
            prefix=canvas.prefix,
            suffix=canvas.suffix,
            old_text=canvas.original,
            max_tokens=max(64, len(canvas.original)),  # characters bound tokens
            sampler=sampler,
            seed=settings.seed + seed,
        )
        attempts.append((params, None))
    for i, (params, cut) in enumerate(attempts):
        result = await _generate(session, params, f"repair {i + 1}/{len(attempts)}")
        if cut is not None:
            kept = C.check_repair(canvas, C.splice_line_fill(text, canvas, cut, result.text))
        else:
            kept = C.check_repair(canvas, result.text) if result.finished else None
        if kept is not None:
            edits = C.minimal_edits(canvas.original, kept, canvas.start)
            return Rewrite(
                to_client_encoding(text, edits, session.position_encoding), version, result
            )
    log.info("repair at %d:%d: no candidate parses", line, character)
    return None


def batches(session: Session) -> bool:
    """Whether the backend answers the wire's batched-candidates and multi-hole requests (the local
    worker and the shared daemon do; a remote vLLM server does not: K sequential passes there)."""
    return bool(getattr(session.backend, "supports_batched", False))


async def _candidate_fills(
    session: Session, params: GenerateParams, k: int
) -> list[tuple[GenerationResult, float]]:
    """K fills of one request and each one's mean log-probability: one batched denoise of K rows
    where the backend has it (model/candidates.py), else K passes with seeds seed..seed+K-1."""
    if batches(session):
        result = await _generate(session, replace(params, candidates=k), f"{k} candidates")
        assert result.candidates is not None, "a batched request answered without candidates"
        return [
            (
                replace(result, text=c.text, token_ids=c.token_ids, finished=c.finished),
                c.mean_logprob,
            )
            for c in result.candidates
        ]
    out = []
    for i in range(k):
        result = await _generate(
            session, replace(params, seed=params.seed + i), f"candidate {i + 1}/{k}"
        )
        # mean_confidence is the mean probability of the committed tokens: its log ranks like the
        # mean log-probability for fills of similar length.
        score = math.log(result.mean_confidence) if result.mean_confidence > 0 else -math.inf
        out.append((result, score))
    return out


async def infill_candidates(
    session: Session, uri: str, line: int, character: int, k: int
) -> list[Infill]:
    """Up to `k` distinct infills for an invoked request: the cursor's request (with its cross-file
    context, pipelines.infill_request) denoised K ways, post-processed, deduplicated and ranked by mean
    log-probability (canvas/candidates.py)."""
    doc = session.document(uri)
    if session.too_big_or_binary(doc) is not None:
        return []
    text, version = doc.source, doc.version
    position = _to_position(session, text, line, character)
    request = infill_request(session, uri, text, doc.language_id or "", position, automatic=False)
    if request is None:
        return []
    canvas, params = request
    fills: list[tuple[str | None, float]] = []
    kept: list[tuple[C.InfillResult, GenerationResult] | None] = []
    for result, score in await _candidate_fills(session, params, k):
        processed = C.postprocess_infill(canvas, result.text)
        kept.append(None if processed is None else (processed, result))
        fills.append((None if processed is None else processed.insert_text, score))
    if doc.version != version:
        return []
    out = []
    for ranked in rank_candidates(fills, k):
        entry = kept[ranked.index]
        assert entry is not None, ranked
        processed, result = entry
        out.append(
            Infill(
                insert_text=processed.insert_text,
                line=position.line,
                start_character=_from_character(session, text, position.line, position.character),
                end_character=_from_character(
                    session, text, position.line, processed.replace_end_character
                ),
                result=result,
            )
        )
    return out
