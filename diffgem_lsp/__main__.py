"""`python -m diffgem_lsp` is the same as the `diffgem-lsp` command."""

import sys

from .cli import main

sys.exit(main())
