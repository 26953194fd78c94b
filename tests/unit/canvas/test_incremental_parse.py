"""canvas/languages.parse re-parses a new text incrementally from the last tree of its grammar: the tree
must be the one a fresh parse gives, whatever the edit (insert, delete, replace; multi-byte, CRLF), and
also when the cached tree is another document's."""

from __future__ import annotations

import random
from pathlib import Path

from diffgem_lsp.canvas import languages as L

ROOT = Path(__file__).resolve().parents[3]
INSERTS = ["x", "(", ")", ":", "\n", "  ", "é", '"', "def ", "\n    return ", "ü\r\n", "{", "🙂"]


def fresh(text: str, grammar: str) -> str:
    return str(L._parser(grammar).parse(L._encode(text)).root_node)


def test_incremental_tree_is_the_fresh_tree():
    rng = random.Random(0)
    sources = [ROOT / "diffgem_lsp/canvas/languages.py", ROOT / "diffgem_lsp/pipelines.py"]
    edits = 0
    for path in sources:
        text = path.read_text()
        L.parse(text, "python")
        for _ in range(40):
            i = rng.randrange(len(text) + 1)
            roll = rng.random()
            if roll < 0.5:
                text = text[:i] + rng.choice(INSERTS) + text[i:]
            elif roll < 0.8:
                text = text[:i] + text[i + rng.randrange(1, 30) :]
            else:
                text = text[:i] + rng.choice(INSERTS) + text[i + 3 :]
            assert str(L.parse(text, "python").root_node) == fresh(text, "python")
            edits += 1
    # The other document's tree is the base here: the edit then spans nearly everything.
    other = "function f(a) {\n  return a + 1;\n}\n"
    L.parse(other, "javascript")
    changed = "const g = (b) => b * 2;\n" + other
    assert str(L.parse(changed, "javascript").root_node) == fresh(changed, "javascript")
    assert edits == 80
