"""Canvases: turn document text + a cursor or selection into what the model fills, and check its answer.

Pure: plain text and dataclasses in and out — no LSP types, no model, no I/O. Positions are UTF-16
`Position`s throughout; positions.py converts from and to the client's negotiated encoding.
"""

from .edit import EditCanvas, TextEditData, build_edit_canvas, minimal_edits, postprocess_edit
from .infill import (
    MAX_TOKENS,
    STOP_RULES,
    InfillCanvas,
    InfillResult,
    build_infill_canvas,
    postprocess_infill,
)
from .languages import SUPPORTED_LANGUAGES, grammar_of
from .multihole import (
    MultiHoleCanvas,
    MultiHoleResult,
    build_multihole_canvases,
    postprocess_multihole,
)
from .placeholders import Placeholder, find_placeholders
from .positions import (
    Position,
    PositionError,
    byte_offset,
    from_utf16_position,
    line_bounds,
    normalize_encoding,
    offset_at,
    position_at,
    to_utf16_position,
    units,
)
from .repair import (
    SyntaxDiagnostic,
    build_repair_canvases,
    check_repair,
    file_parses,
    repair_cuts,
    splice_line_fill,
    syntax_diagnostics,
)

__all__ = [
    "MAX_TOKENS",
    "STOP_RULES",
    "SUPPORTED_LANGUAGES",
    "EditCanvas",
    "InfillCanvas",
    "InfillResult",
    "MultiHoleCanvas",
    "MultiHoleResult",
    "Placeholder",
    "Position",
    "PositionError",
    "SyntaxDiagnostic",
    "TextEditData",
    "build_edit_canvas",
    "build_infill_canvas",
    "build_multihole_canvases",
    "build_repair_canvases",
    "check_repair",
    "file_parses",
    "byte_offset",
    "find_placeholders",
    "from_utf16_position",
    "grammar_of",
    "line_bounds",
    "minimal_edits",
    "normalize_encoding",
    "offset_at",
    "position_at",
    "repair_cuts",
    "splice_line_fill",
    "postprocess_edit",
    "postprocess_infill",
    "postprocess_multihole",
    "syntax_diagnostics",
    "to_utf16_position",
    "units",
]
