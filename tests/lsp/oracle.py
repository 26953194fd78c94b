"""What the server must answer, computed in-process: the same canvas, engine call and post-processing.

And the fixtures that exercise a path: the first candidate hole the shipped model fills non-empty, the
first candidate selection whose rewrite changes something — searched against the real model at test
time, so the tests follow the checkpoint instead of hard-coding its outputs. A search that finds nothing
fails the test that asked (never a skip): then no fixture exercises that path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from diffgem_lsp import canvas as C
from diffgem_lsp import pipelines
from diffgem_lsp.settings import Settings, resolve_settings
from examples.editor_client import Hole

from .conftest import TEST_OPTIONS

SETTINGS: Settings = resolve_settings(TEST_OPTIONS)[0]

# Holes in the order tried; the first ones are what the shipped checkpoint fills today.
INFILL_CANDIDATES = [
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n'
    "    return ⟨⟩\n\n\nprint(fibonacci(10))\n",
    "def area(width, height):\n    return ⟨⟩\n",
    "for i in range(10):\n    print(⟨⟩)\n",
    "import os\n\npath = os.path.join(⟨⟩)\n",
    'def greet(name):\n    message = "Hello, ⟨⟩"\n    return message\n',
]
# Non-ASCII before the cursor on its line (😀 is two UTF-16 code units), for the position tests.
NON_ASCII_CANDIDATES = [
    '# café 中文 😀\nlabel = "naïve 😀 ⟨⟩"\nprint(label)\n',
    '# café 😀\nvalues = ["é", "😀"]; total = ⟨⟩\n',
    'name = "😀"; print(⟨⟩)\n',
]


@dataclass(frozen=True)
class Selection:
    text: str
    start: tuple[int, int]  # (line, UTF-16 character)
    end: tuple[int, int]


REWRITE_CANDIDATES = [
    Selection("x = 1\ny = x+1\nprint( y )\n", (1, 0), (2, 10)),
    Selection("def f(x):\n    y = x*2\n    print( y )\n    return y\n", (1, 4), (2, 14)),
    Selection("values = [1, 2, 3]\nfor v in values :\n    print( v )\n", (1, 0), (2, 14)),
    Selection(
        "def average(values):\n    total = 0\n    count = 0\n    for i in range(0, len(values)):\n"
        "        total = total + values[i]\n        count = count + 1\n    return total / count\n",
        (1, 4),
        (5, 21),
    ),
]


@functools.cache
def engine():
    from diffgem_model.engine import Engine

    return Engine.load(device="cpu", prompt_cache_mb=0)


def _generate(params):
    from diffgem_model.worker import with_checkpoint_schedule

    eng = engine()
    sampler = with_checkpoint_schedule(params.sampler, eng.sampler_defaults())
    return eng.generate(replace(params, sampler=sampler))


def joint_holes_kept(text: str, settings: Settings = SETTINGS) -> list[bool]:
    """Per hole of the document's one multi-hole unit: whether the server keeps the joint pass's fill
    (the wire's multi-hole request, model/multihole.py, then postprocess_multihole)."""
    from diffgem_model.multihole import generate_holes
    from diffgem_model.worker import with_checkpoint_schedule

    from diffgem_protocol import GenerateParams

    [canvas] = C.build_multihole_canvases(text, "python")
    sampler = pipelines.sampler_settings(settings, automatic=False)
    params = GenerateParams(
        prefix=canvas.prefix,
        suffix=canvas.suffix,
        segments=canvas.segments,
        hole_tokens=canvas.max_tokens,
        sampler=with_checkpoint_schedule(sampler, engine().sampler_defaults()),
        seed=settings.seed,
    )
    fills = generate_holes(engine(), params).fills
    assert fills is not None, "the unit's holes do not fit one canvas"
    return C.postprocess_multihole(canvas, list(fills)).filled


def expected_fill(hole: Hole, settings: Settings = SETTINGS) -> C.InfillResult | None:
    canvas = C.build_infill_canvas(hole.text, "python", C.Position(hole.line, hole.character))
    if canvas is None:
        return None
    result = _generate(pipelines.infill_params(canvas, settings, automatic=False))
    return C.postprocess_infill(canvas, result.text)


def rewrite_outcome(selection: Selection, settings: Settings = SETTINGS) -> tuple[str | None, str]:
    """(the whole document after the rewrite, or None when the model offers no change; and then the
    server's reason, the one it puts in the disabled action: pipelines.no_rewrite_reason)."""
    canvas = C.build_edit_canvas(
        selection.text, "python", C.Position(*selection.start), C.Position(*selection.end)
    )
    result = _generate(pipelines.rewrite_params(canvas, settings))
    new_text = pipelines.rewritten_text(canvas, result)
    if new_text is None:
        return None, pipelines.no_rewrite_reason(canvas, result)
    return canvas.prefix + new_text + canvas.suffix, ""


def expected_rewrite(selection: Selection, settings: Settings = SETTINGS) -> str | None:
    """The whole document after the rewrite, or None when the model offers no change."""
    return rewrite_outcome(selection, settings)[0]


def _first_filled(candidates: list[str]) -> tuple[Hole, C.InfillResult]:
    tried = []
    for marked in candidates:
        hole = Hole.from_marked(marked)
        fill = expected_fill(hole)
        if fill is not None and fill.insert_text.strip():
            return hole, fill
        tried.append((marked, fill))
    raise AssertionError(f"the shipped model fills none of the candidate holes: {tried}")


@functools.cache
def filled_hole() -> tuple[Hole, C.InfillResult]:
    return _first_filled(INFILL_CANDIDATES)


@functools.cache
def filled_non_ascii_hole() -> tuple[Hole, C.InfillResult]:
    return _first_filled(NON_ASCII_CANDIDATES)


@functools.cache
def changing_rewrite(settings: Settings = SETTINGS) -> tuple[Selection, str]:
    for selection in REWRITE_CANDIDATES:
        after = expected_rewrite(selection, settings)
        if after is not None:
            return selection, after
    raise AssertionError("the shipped model rewrites none of the candidate selections")


@functools.cache
def kept_rewrite(settings: Settings = SETTINGS) -> tuple[Selection, str]:
    """The first candidate selection the model offers no change for, with the server's reason: the
    fixture of the "explain" path (the editor shows "diffgem: " + reason and leaves the text alone)."""
    for selection in reversed(REWRITE_CANDIDATES):
        after, reason = rewrite_outcome(selection, settings)
        if after is None:
            return selection, reason
    raise AssertionError("the shipped model rewrites every candidate selection: none is kept")
