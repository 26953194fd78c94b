"""diffgem_model: the model side of diffgem-lsp — engine, resident worker, embedded checkpoint, training recipe.

Installed under the import name `diffgem_model` (the repo folder is `model/`). Everything here may import
torch; the LSP server (`diffgem_lsp`) never imports this package, it talks to `diffgem_model.worker`.
"""

from pathlib import Path

EMBEDDED_CHECKPOINT = Path(__file__).resolve().parent / "embedded"
