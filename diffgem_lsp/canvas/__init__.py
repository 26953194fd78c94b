"""Canvases: turn document text + a cursor or selection into what the model fills, and check its answer.

Pure: plain text and dataclasses in and out — no LSP types, no model, no I/O.
"""

from .edit import EditCanvas, TextEditData, build_edit_canvas, minimal_edits, postprocess_edit
from .infill import InfillCanvas, InfillResult, build_infill_canvas, postprocess_infill
from .languages import SUPPORTED_LANGUAGES
from .positions import (
    Position,
    PositionError,
    byte_offset,
    from_utf16_position,
    offset_at,
    position_at,
    to_utf16_position,
)

__all__ = [
    "SUPPORTED_LANGUAGES",
    "EditCanvas",
    "InfillCanvas",
    "InfillResult",
    "Position",
    "PositionError",
    "TextEditData",
    "build_edit_canvas",
    "build_infill_canvas",
    "byte_offset",
    "from_utf16_position",
    "minimal_edits",
    "offset_at",
    "position_at",
    "postprocess_edit",
    "postprocess_infill",
    "to_utf16_position",
]
