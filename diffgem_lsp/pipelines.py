"""The two model-backed pipelines the features share: infill at a cursor, and rewrite of a selection.

Document text + position -> canvas (pure) -> backend -> post-processing (pure) -> plain results. No LSP
types are built here (the `results` module builds them); errors for the client are raised as pygls JSON-RPC
exceptions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pygls.exceptions import JsonRpcContentModified, JsonRpcInternalError, JsonRpcInvalidParams

from diffgem_protocol import GenerateParams, GenerationResult, SamplerSettings

from . import canvas as C
from . import cross_file
from .backends import BackendError
from .session import Session
from .settings import Settings

log = logging.getLogger("diffgem.pipelines")

# JSON-RPC code for "request failed" (LSP 3.17): the model is unavailable or crashed.
REQUEST_FAILED = -32803


class ModelUnavailable(JsonRpcInternalError):
    # pygls' constructor reads CODE: the lowercase `code` this had was overwritten with -32603.
    CODE = REQUEST_FAILED


# Deadlines for one generation, waiting for a loading model included. As-you-type requests give up
# early (an empty answer; the next keystroke asks again); invoked ones get a clear error. A stalled
# worker is caught sooner by the backend's watchdog (backends/local.py).
AUTOMATIC_DEADLINE_S = 15.0
INVOKED_DEADLINE_S = 120.0


@dataclass(frozen=True)
class Infill:
    insert_text: str
    line: int
    start_character: int  # in the client's position encoding
    end_character: int  # == start unless the item replaces text after the cursor on this line
    result: GenerationResult


@dataclass(frozen=True)
class Rewrite:
    edits: list[C.TextEditData]
    version: int | None
    result: GenerationResult


# "Rewrite selection" outcomes without an edit, in the words every editor shows after "diffgem: "
# (editors/README.md; tests/editors/conftest.py REWRITE_OUTCOMES). One per outcome, so the user knows
# whether the model agreed with the code or its rewrite was thrown away, and why.
KEPT = "the model kept the selection as it is"
EMPTY = "the model's rewrite was empty: dropped"
CUT_BY_BUDGET = "the model's rewrite was cut by the token budget: dropped"
WOULD_NOT_PARSE = "the model's rewrite would not parse: dropped"


@dataclass(frozen=True)
class NoRewrite:
    """A rewrite without an edit and the reason (one of the outcomes above). Falsy, like None was."""

    reason: str

    def __bool__(self) -> Literal[False]:
        return False


def sampler_settings(s: Settings, automatic: bool) -> SamplerSettings:
    """The user's settings as sampler knobs. Temperatures are the checkpoint's own (the worker sets them)."""
    return SamplerSettings(
        rule=s.sampler,
        max_steps=s.automatic_steps if automatic else s.invoked_steps,
        confidence_threshold=s.confidence_threshold,
        # A zero mean-entropy bar never triggers: the step budget alone ends denoising.
        stop_entropy=SamplerSettings.stop_entropy if s.early_stop else 0.0,
    )


def _to_position(session: Session, text: str, line: int, character: int) -> C.Position:
    """Client position -> canvas Position (UTF-16), with a clear InvalidParams error past the end."""
    try:
        return C.to_utf16_position(text, C.Position(line, character), session.position_encoding)
    except C.PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


def _from_character(session: Session, text: str, line: int, utf16_character: int) -> int:
    return C.from_utf16_position(
        text, C.Position(line, utf16_character), session.position_encoding
    ).character


async def _generate(
    session: Session,
    params: GenerateParams,
    what: str,
    on_draft: Callable[[str], None] | None = None,
    deadline_s: float = INVOKED_DEADLINE_S,
) -> GenerationResult:
    t0 = time.perf_counter()
    try:
        # asyncio.timeout rather than wait_for: on 3.11 wait_for runs the coroutine in a task of its
        # own, one more task and one more loop turn on every request (backends/vllm.py does the
        # same); the deadline still cancels the generation, in this task.
        async with asyncio.timeout(deadline_s):
            result = await session.backend.generate(params, on_draft=on_draft)
    except TimeoutError as exc:  # the deadline cancelled the generation (and with it the worker's)
        log.error("%s: no answer from the model within %.0f s", what, deadline_s)
        raise ModelUnavailable(
            f"diffgem: no answer from the model within {deadline_s:.0f} s"
        ) from exc
    except BackendError as exc:
        log.error("%s failed: %s", what, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        raise ModelUnavailable(f"diffgem: {exc}") from exc
    log.info(
        "%s: %d tokens, %d forwards, %.0f ms (encode %.0f ms, %d/%d prompt tokens reused)",
        what,
        result.tokens,
        result.forwards,
        (time.perf_counter() - t0) * 1000,
        result.encode_ms,
        result.reused_tokens,
        result.reused_tokens + result.encoded_tokens,
    )
    return result


async def infill(
    session: Session,
    uri: str,
    line: int,
    character: int,
    *,
    automatic: bool,
    prefix_extra: str = "",
    on_draft: Callable[[str], None] | None = None,
) -> Infill | None:
    """Ghost text for the cursor, or None when there is nothing worth showing."""
    doc = session.document(uri)
    if (reason := session.too_big_or_binary(doc)) is not None:
        log.info("no suggestion for %s: %s", uri, reason)
        return None
    text, version = doc.source, doc.version
    position = _to_position(session, text, line, character)
    if automatic and (wait := session.debounce_s(uri)):
        await asyncio.sleep(wait)
        if doc.version != version:  # the user kept typing: a newer request is coming
            return None
    request = infill_request(
        session, uri, text, doc.language_id or "", position, automatic, prefix_extra
    )
    if request is None:
        return None
    canvas, params = request
    deadline = AUTOMATIC_DEADLINE_S if automatic else INVOKED_DEADLINE_S
    started = time.perf_counter()
    try:
        result = await _generate(session, params, f"infill {canvas.hole_kind}", on_draft, deadline)
        if (typing := session.typing.get(uri)) is not None:  # the debounce weighs answers vs keys
            typing.observe_request((time.perf_counter() - started) * 1000)
    except ModelUnavailable:
        if automatic:  # as-you-type: no ghost text while the model is unavailable, not an error
            return None
        raise
    if doc.version != version:
        return None
    processed = C.postprocess_infill(
        canvas, prefix_extra + result.text if prefix_extra else result.text
    )
    if processed is None:
        return None
    insert_text = processed.insert_text
    start = _from_character(session, text, position.line, position.character)
    # Each conversion walks the document's lines in Python (~40 µs in a 20 KB file): an item that
    # replaces nothing after the cursor ends where it starts.
    end = (
        start
        if processed.replace_end_character == position.character
        else _from_character(session, text, position.line, processed.replace_end_character)
    )
    return Infill(
        insert_text=insert_text,
        line=position.line,
        start_character=start,
        end_character=end,
        result=result,
    )


def infill_request(
    session: Session,
    uri: str,
    text: str,
    language: str,
    position: C.Position,
    automatic: bool,
    prefix_extra: str = "",
) -> tuple[C.InfillCanvas, GenerateParams] | None:
    """The canvas and model request for a cursor (UTF-16 `position`), or None where nothing is worth
    suggesting. The one place an infill prompt is built: the prefill (prefill.py) goes through it
    too, so its prompt, and with it the worker's prompt-cache key, is the one the request will send."""
    canvas = C.build_infill_canvas(text, language, position)
    if canvas is None:
        return None
    params = infill_params(canvas, session.settings, automatic, prefix_extra)
    # canvas.before is text[:offset of the cursor]: its length is that offset, without converting
    # the position again.
    header = cross_file.context_header(session, uri, text, len(canvas.before), language)
    if header:  # snippets of other files, before the prefix (cross_file.py)
        params = replace(params, prefix=header + params.prefix)
    return canvas, params


async def rewrite(
    session: Session,
    uri: str,
    start: tuple[int, int],
    end: tuple[int, int],
    version: int | None,
    instruction: str | None = None,
) -> Rewrite | NoRewrite:
    """A minimal edit that rewrites the selection (expanded to whole syntax nodes), or why there is none.

    `instruction`: the user's words for it ("Rewrite selection…"), for a backend whose layout follows
    them (instructions.takes_instructions, checked by the caller)."""
    doc = session.document(uri)
    if version is not None and doc.version is not None and doc.version != version:
        raise JsonRpcContentModified("document changed since the code action was listed")
    if (reason := session.too_big_or_binary(doc)) is not None:
        raise JsonRpcInvalidParams(f"diffgem: cannot rewrite: {reason}")
    text = doc.source
    start_pos = _to_position(session, text, *start)
    end_pos = _to_position(session, text, *end)
    canvas = C.build_edit_canvas(text, doc.language_id or "", start_pos, end_pos)
    params = rewrite_params(canvas, session.settings, instruction)
    result = await _generate(
        session, params, "rewrite" if instruction is None else "instructed rewrite"
    )
    new_text = rewritten_text(canvas, result)
    if new_text is None:
        return NoRewrite(no_rewrite_reason(canvas, result))
    edits = C.minimal_edits(canvas.original, new_text, canvas.start)
    return Rewrite(
        edits=to_client_encoding(text, edits, session.position_encoding),
        version=doc.version,
        result=result,
    )


def infill_params(
    canvas: C.InfillCanvas, settings: Settings, automatic: bool, prefix_extra: str = ""
) -> GenerateParams:
    return GenerateParams(
        prefix=canvas.prefix + prefix_extra,
        suffix=canvas.suffix,
        max_tokens=canvas.max_tokens,
        sampler=sampler_settings(settings, automatic),
        seed=settings.seed,
    )


def rewrite_params(
    canvas: C.EditCanvas, settings: Settings, instruction: str | None = None
) -> GenerateParams:
    return GenerateParams(
        instruction=instruction,
        prefix=canvas.prefix,
        suffix=canvas.suffix,
        old_text=canvas.original,
        # Generous: characters bound tokens. An instruction may ask for more code (docstrings, a
        # branch), so its rewrite may grow to twice the selection.
        max_tokens=max(64, len(canvas.original)) * (1 if instruction is None else 2),
        sampler=sampler_settings(settings, automatic=False),
        seed=settings.seed,
    )


def rewritten_text(canvas: C.EditCanvas, result: GenerationResult) -> str | None:
    """The new text of the selection, or None when the model offers no usable change."""
    if not result.finished:
        # A rewrite cut by the token budget would drop the rest of the selection: offer nothing.
        log.info("rewrite not finished within %d tokens: dropped", result.tokens)
        return None
    new_text = C.postprocess_edit(canvas, result.text)
    if new_text is None or new_text == canvas.original:
        return None
    return new_text


def no_rewrite_reason(canvas: C.EditCanvas, result: GenerationResult) -> str:
    """Why rewritten_text() offered nothing: one of the outcomes above."""
    if not result.finished:
        return CUT_BY_BUDGET
    if not result.text.strip():
        return EMPTY
    if C.postprocess_edit(canvas, result.text) is None:  # non-empty: it parsed worse
        return WOULD_NOT_PARSE
    return KEPT


def to_client_encoding(
    text: str, edits: list[C.TextEditData], encoding: Any
) -> list[C.TextEditData]:
    """Edits with UTF-16 positions in `text` -> the same edits in the client's position encoding."""
    return [
        C.TextEditData(
            start=C.from_utf16_position(text, e.start, encoding),
            end=C.from_utf16_position(text, e.end, encoding),
            new_text=e.new_text,
        )
        for e in edits
    ]
