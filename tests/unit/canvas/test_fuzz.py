"""Random documents, cursors, selections and model outputs: the canvas functions never raise (but for
PositionError past the last line), and what they return applies cleanly to the document."""

from __future__ import annotations

import random

from diffgem_lsp import canvas as C

from .cases import CASES
from .test_golden import apply_edits, apply_infill

FRAGMENTS = [
    "x",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    ";",
    "\n",
    "\n    ",
    "\t",
    " ",
    "é",
    "😀",
    '"',
    "'",
    "`",
    "#",
    "//",
    "/*",
    "*/",
    "\r\n",
    "return ",
    "def f():",
    "if (a) {",
]
LANGUAGES = ["python", "go", "rust", "typescriptreact", "javascript", "plaintext", "tsx"]


def _noise(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, n)))


def test_random_inputs_never_crash_and_results_apply():
    rng = random.Random(0)
    texts = [c.marked.replace("⟨⟩", "").replace("«", "").replace("»", "") for c in CASES]
    shown = 0
    for _ in range(1500):
        text = rng.choice(texts)
        i = rng.randint(0, len(text))
        text = text[:i] + _noise(rng, 3) + text[i:]
        language = rng.choice(LANGUAGES)
        lines = text.count("\n") + 1
        position = C.Position(rng.randint(0, lines - 1), rng.randint(0, 30))

        canvas = C.build_infill_canvas(text, language, position)
        if canvas is not None:
            assert canvas.before + canvas.after == text
            result = C.postprocess_infill(canvas, _noise(rng, 8))
            if result is not None:
                shown += 1
                assert result.insert_text.strip()
                assert result.replace_end_character >= canvas.position.character
                document = apply_infill(text, canvas, result)
                assert document.startswith(canvas.before)

        other = C.Position(rng.randint(0, lines - 1), rng.randint(0, 30))
        edit = C.build_edit_canvas(text, language, position, other)
        assert edit.prefix + edit.original + edit.suffix == text
        new = C.postprocess_edit(edit, _noise(rng, 8))
        if new is not None:
            edits = C.minimal_edits(edit.original, new, edit.start)
            assert apply_edits(text, edits) == edit.prefix + new + edit.suffix
    assert shown > 50  # the filters let some random fills through: this test exercised them
