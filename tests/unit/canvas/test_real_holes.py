"""Holes punched in real code: the true middle, followed by the code after it (a model that runs on),
must come back from post-processing as exactly the middle. Guards the filters against cutting or
rejecting good fills (llm-ls evaluates the same way, on holes punched in real repositories).

The corpus is this repository's own Python sources, so the test needs nothing from outside.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from diffgem_lsp import canvas as C
from diffgem_lsp.canvas import lines as canvas_lines

ROOT = Path(__file__).resolve().parents[3]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def punch(text: str, rng: random.Random) -> tuple[str, int, int, str] | None:
    """(scenario, cut, end, expected): remove text[cut:end]; the fill should be `expected`."""
    lines = text.split("\n")
    row = rng.randrange(len(lines))
    line = lines[row]
    if not line.strip():
        return None
    line_start = sum(len(x) + 1 for x in lines[:row])
    scenario = rng.choice(["rest_of_line", "body", "inside_brackets", "statements"])
    if scenario == "statements":
        # Whole statements cut out of a body, the cursor left on a blank line at their indentation.
        end = row + rng.randint(1, 4)
        if end > len(lines) or row == 0 or line.lstrip().startswith(("#", ")", "]", "}")):
            return None
        block = lines[row:end]
        if any(_indent(x) < _indent(line) or not x.strip() for x in block):
            return None
        if canvas_lines.bracket_balance("\n".join(block)) or block[-1].rstrip().endswith(","):
            return None  # not whole statements
        if _indent(lines[row - 1]) > _indent(line) or lines[row - 1].rstrip().endswith(("(", "[")):
            return None  # the line above is inside a bracket or a deeper body
        cut = line_start + _indent(line)
        stop = line_start + len("\n".join(block))
        return scenario, cut, stop, text[cut:stop]
    if scenario == "rest_of_line":
        column = rng.randrange(1, len(line.rstrip()) + 1)
        middle = line[column:].rstrip()
        if not line[:column].strip() or not middle.strip():
            return None
        return scenario, line_start + column, line_start + column + len(middle), middle
    if scenario == "body":
        if not line.rstrip().endswith(":") or line.lstrip().startswith("#"):
            return None
        end = row + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > _indent(line)):
            end += 1
        while end > row + 1 and not lines[end - 1].strip():
            end -= 1
        if end == row + 1 or end - row > 12:
            return None
        cut = line_start + len(line.rstrip())
        stop = line_start + len(line) + 1 + len("\n".join(lines[row + 1 : end]))
        return scenario, cut, stop, text[cut:stop].rstrip()
    closers = len(line.rstrip()) - len(line.rstrip().rstrip(")]}"))
    body_end = len(line.rstrip()) - closers
    if not closers or body_end < 2:
        return None
    column = rng.randrange(1, body_end)
    middle = line[column:body_end]
    if not line[:column].strip() or not middle.strip():
        return None
    return scenario, line_start + column, line_start + body_end, middle


def test_true_middles_survive_post_processing():
    rng = random.Random(0)
    sources = sorted((ROOT / "diffgem_lsp").rglob("*.py")) + sorted((ROOT / "model").rglob("*.py"))
    # Only the project's own code: model/data/ (git-ignored) holds the training corpus once
    # `model/train` has fetched it, which would make the figures depend on the machine.
    sources = [p for p in sources if (ROOT / "model" / "data") not in p.parents]
    assert sources
    tried, exact, misses = Counter(), Counter(), []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for _ in range(40):
            hole = punch(text, rng)
            if hole is None:
                continue
            scenario, cut, end, expected = hole
            document = text[:cut] + text[end:]
            canvas = C.build_infill_canvas(document, "python", C.position_at(document, cut))
            if canvas is None:  # a comment or the middle of a word: nothing to show
                continue
            tried[scenario] += 1
            # The model writes the middle, then runs on into the code that follows it.
            result = C.postprocess_infill(canvas, text[cut:end] + text[end : end + 300])
            if result is not None and result.insert_text == expected:
                exact[scenario] += 1
            else:
                misses.append((path.name, scenario, expected, result))
    for scenario in tried:
        assert tried[scenario] >= 20, tried
        rate = exact[scenario] / tried[scenario]
        assert rate >= 0.95, (scenario, rate, misses[:5])
