"""LSP feature handlers, one module per method family: module-level `(session, params) -> result` functions.

Registered from the one table in `handlers.py`; they build LSP types through the `results` module.
"""
