"""diffgem_model: the model side of diffgem-lsp — engine, resident worker, embedded checkpoint, training recipe.

Installed under the import name `diffgem_model` (the repo folder is `model/`). Everything here may import
torch; the LSP server (`diffgem_lsp`) never imports this package, it talks to `diffgem_model.worker`.
"""

import os
from pathlib import Path

# Before torch loads OpenMP (libgomp reads this once, at load): threads that wait at a barrier sleep
# instead of spinning. On a shared 2-core CPU a spinning 2-thread team made a decoder step ~10x slower
# than one thread (1028 vs 107 ms under load 11); sleeping, 2 threads took 50 ms (fast_decoder.
# default_threads). The worker and the daemon import this package before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

EMBEDDED_CHECKPOINT = Path(__file__).resolve().parent / "embedded"
