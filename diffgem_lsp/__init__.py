"""diffgem-lsp: a language server that fills, rewrites and repairs code with a diffusion language model.

This package is the LSP side only: it never imports torch (the model lives in `diffgem_model.worker`).
"""

__version__ = "0.1.0"
