"""Golden-file tests of the pure canvas functions, for each supported language.

Regenerate with `pytest tests/unit/test_canvas_golden.py --update-golden` and review the diff.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from diffgem_lsp import canvas as C

from .canvas_cases import CASES

GOLDEN = Path(__file__).parent / "golden"
HOLE, SEL = "⟨⟩", ("«", "»")


def _position(text: str, offset: int) -> C.Position:
    return C.position_at(text, offset)


def run_case(language: str, marked: str, fills: list[str]) -> dict:
    if HOLE in marked:
        offset = marked.index(HOLE)
        text = marked.replace(HOLE, "")
        canvas = C.build_infill_canvas(text, language, _position(text, offset))
        if canvas is None:
            return {"canvas": None}
        results = [C.postprocess_infill(canvas, fill) for fill in fills]
        return {
            "canvas": {
                "hole_kind": canvas.hole_kind,
                "max_tokens": canvas.max_tokens,
                "position": asdict(canvas.position),
                "prefix_tail": canvas.prefix[-40:],
                "suffix_head": canvas.suffix[:40],
                "line_suffix": canvas.line_suffix,
                "indent": canvas.indent,
            },
            "fills": [
                {"model": f, "shown": asdict(r) if r else None}
                for f, r in zip(fills, results, strict=True)
            ],
        }
    start, end = marked.index(SEL[0]), marked.index(SEL[1]) - 1
    text = marked.replace(SEL[0], "").replace(SEL[1], "")
    canvas = C.build_edit_canvas(text, language, _position(text, start), _position(text, end))
    fills_out = []
    for fill in fills:
        new = C.postprocess_edit(canvas, fill)
        edits = C.minimal_edits(canvas.original, new, canvas.start) if new is not None else None
        fills_out.append(
            {
                "model": fill,
                "new": new,
                "edits": [asdict(e) for e in edits] if edits is not None else None,
            }
        )
    return {
        "canvas": {
            "original": canvas.original,
            "start": asdict(canvas.start),
            "end": asdict(canvas.end),
        },
        "fills": fills_out,
    }


@pytest.mark.parametrize("case_id,language,marked,fills", CASES, ids=[c[0] for c in CASES])
def test_canvas_golden(case_id, language, marked, fills, request):
    got = run_case(language, marked, fills)
    path = GOLDEN / f"{case_id}.json"
    if request.config.getoption("--update-golden") or not path.exists():
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(path.read_text(encoding="utf-8"))


def test_every_supported_language_has_golden_cases():
    covered = {language for _, language, _, _ in CASES}
    assert C.SUPPORTED_LANGUAGES - {"javascriptreact"} <= covered


def test_edits_apply_to_the_new_text():
    text = "a = 1\nb = 2\nc = 3\n"
    new = "a = 1\nb = 20\nc = 3\nd = 4\n"
    edits = C.minimal_edits(text, new, C.Position(0, 0))
    out = text
    for e in sorted(edits, key=lambda e: (e.start.line, e.start.character), reverse=True):
        s, t = C.offset_at(out, e.start), C.offset_at(out, e.end)
        out = out[:s] + e.new_text + out[t:]
    assert out == new
    assert len(edits) == 2 and edits[0].new_text == "0"


@pytest.mark.parametrize(
    "text,pos,utf16,utf8",
    [
        ("héllo wörld", C.Position(0, 7), 7, 8),
        ("x = '😀😀'\ny", C.Position(0, 7), 7, 9),
        ("中文\n中文abc", C.Position(1, 3), 3, 7),
    ],
)
def test_position_encodings(text, pos, utf16, utf8):
    offset = C.offset_at(text, pos, "utf-16")
    assert C.position_at(text, offset, "utf-16").character == utf16
    assert C.from_utf16_position(text, pos, "utf-8").character == utf8
    assert C.to_utf16_position(text, C.Position(pos.line, utf8), "utf-8") == pos


def test_positions_past_the_end():
    with pytest.raises(C.PositionError):
        C.offset_at("one\ntwo", C.Position(5, 0))
    # A character past the line's end is clamped to it (LSP 3.17).
    assert C.offset_at("one\ntwo", C.Position(0, 99)) == 3
