"""Golden-file tests of the pure canvas functions, for each supported language and the plain fallback.

Regenerate with `pytest tests/unit/canvas --update-golden` and review the diff: each golden file shows the
input, the canvas, and for each model output what the editor would show and the document it leads to.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from diffgem_lsp import canvas as C

from .cases import CASES, Case

HOLE, SEL = "⟨⟩", ("«", "»")


def lines(text: str) -> list[str]:
    """Text as a list of lines (with "\\r" kept visible), for readable golden files."""
    return text.split("\n")


def apply_infill(text: str, canvas: C.InfillCanvas, result: C.InfillResult) -> str:
    start = C.offset_at(text, canvas.position)
    end = C.offset_at(text, C.Position(canvas.position.line, result.replace_end_character))
    return text[:start] + result.insert_text + text[end:]


def apply_edits(text: str, edits: list[C.TextEditData]) -> str:
    """Apply edits whose ranges all refer to `text` (LSP WorkspaceEdit semantics)."""
    spans = [(C.offset_at(text, e.start), C.offset_at(text, e.end), e.new_text) for e in edits]
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def run_infill(case: Case) -> dict:
    offset = case.marked.index(HOLE)
    text = case.marked.replace(HOLE, "")
    canvas = C.build_infill_canvas(text, case.language, C.position_at(text, offset))
    out: dict = {"language": case.language, "input": lines(case.marked)}
    if canvas is None:
        assert not case.fills, "a case without a canvas has no fills to show"
        return out | {"canvas": None}
    assert canvas.prefix + canvas.suffix == text  # small files fit the windows whole
    out["canvas"] = {
        "hole_kind": canvas.hole_kind,
        "max_tokens": canvas.max_tokens,
        "stop": canvas.stop,
        "scope": canvas.scope,
        "position": asdict(canvas.position),
        "indent": canvas.indent,
        "line_suffix": canvas.line_suffix,
        "base_errors": canvas.base_errors,
    }
    out["fills"] = []
    for fill in case.fills:
        result = C.postprocess_infill(canvas, fill)
        shown = None if result is None else asdict(result)
        after = None if result is None else lines(apply_infill(text, canvas, result))
        out["fills"].append({"model": fill, "shown": shown, "document": after})
    return out


def run_edit(case: Case) -> dict:
    start, end = case.marked.index(SEL[0]), case.marked.index(SEL[1]) - 1
    text = case.marked.replace(SEL[0], "").replace(SEL[1], "")
    canvas = C.build_edit_canvas(
        text, case.language, C.position_at(text, start), C.position_at(text, end)
    )
    assert canvas.prefix + canvas.original + canvas.suffix == text
    out: dict = {
        "language": case.language,
        "input": lines(case.marked),
        "canvas": {
            "original": lines(canvas.original),
            "start": asdict(canvas.start),
            "end": asdict(canvas.end),
        },
        "fills": [],
    }
    for fill in case.fills:
        new = C.postprocess_edit(canvas, fill)
        entry: dict = {"model": fill, "new": None if new is None else lines(new)}
        if new is not None:
            edits = C.minimal_edits(canvas.original, new, canvas.start)
            entry["edits"] = [asdict(e) for e in edits]
            document = apply_edits(text, edits)
            assert document == canvas.prefix + new + canvas.suffix
            entry["document"] = lines(document)
        out["fills"].append(entry)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_canvas_golden(case: Case, golden):
    data = run_infill(case) if HOLE in case.marked else run_edit(case)
    golden(case.id, data)


def test_every_supported_language_has_infill_and_edit_cases():
    infill = {C.grammar_of(c.language) for c in CASES if HOLE in c.marked}
    edit = {C.grammar_of(c.language) for c in CASES if SEL[0] in c.marked}
    grammars = {C.grammar_of(language) for language in C.SUPPORTED_LANGUAGES}
    assert grammars <= infill and grammars - {"tsx"} <= edit
    assert None in infill and None in edit  # the plain fallback


def test_golden_files_match_the_cases():
    from .conftest import GOLDEN

    assert {p.stem for p in GOLDEN.glob("*.json")} == {c.id for c in CASES}
