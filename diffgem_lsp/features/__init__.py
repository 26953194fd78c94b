"""LSP feature handlers, one module per method family; each exposes `register(server)`."""
