"""Command line: `diffgem-lsp` (stdio), `--tcp PORT` (127.0.0.1 only), `--version`, `--log-file`, `--check`.

Stdout belongs to the LSP stream in stdio mode, so logs go to stderr or the log file, never stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from . import __version__
from .isolation import open_private

log = logging.getLogger("diffgem.cli")


def _configure_logging(log_file: str | None, level: str) -> None:
    handler: logging.Handler = (
        # Created 0600: the log holds the user's code (isolation.open_private).
        logging.StreamHandler(open(open_private(log_file), "a", encoding="utf-8", buffering=1))
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("diffgem").setLevel(level.upper())


async def _check(model_path: str, precision: str) -> int:
    """Load the model once through a real worker and print a one-line health report (for :checkhealth)."""
    from .backends import BackendError, create_backend
    from .settings import Settings

    settings = Settings(model_path=model_path, precision=precision)
    backend = create_backend(settings, on_state=lambda state, message: None)
    await backend.start()
    try:
        await backend.wait_ready(timeout=300)
        status = await backend.status()
        memory = status.get("memory") or {}
        print(
            json.dumps(
                {
                    "ok": True,
                    "version": __version__,
                    "model": status.get("model"),
                    "weights": status.get("weights"),  # what the precision really quantised
                    "memory": memory.get("message"),  # need vs what the device has
                }
            )
        )
        return 0
    except BackendError as exc:
        log.debug("--check failed", exc_info=True)
        print(json.dumps({"ok": False, "version": __version__, "error": str(exc)}))
        return 1
    finally:
        await backend.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="diffgem-lsp", description="Language server: code completions from a diffusion model."
    )
    parser.add_argument("--version", action="version", version=f"diffgem-lsp {__version__}")
    parser.add_argument(
        "--stdio", action="store_true", help="speak LSP over stdin/stdout (default)"
    )
    parser.add_argument(
        "--tcp", type=int, metavar="PORT", help="listen on 127.0.0.1:PORT instead of stdio"
    )
    parser.add_argument(
        "--token-file",
        help="with --tcp: a file holding the token clients must send as initializationOptions.token "
        "(or set DIFFGEM_LSP_TOKEN)",
    )
    parser.add_argument("--log-file", help="write the log here instead of stderr")
    parser.add_argument(
        "--log-level",
        choices=["error", "warning", "info", "debug"],
        help="log level (default: info); when given, it wins over the logLevel setting",
    )
    parser.add_argument(
        "--check", action="store_true", help="load the model once, print a health line, exit"
    )
    parser.add_argument("--model-path", default="", help="with --check: checkpoint to load")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp8", "int8", "int4"],
        help="with --check: weights precision (memory need is printed against the device's)",
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="print the shared model daemons of this user (clients, memory) as JSON, exit",
    )
    args = parser.parse_args(argv)
    _configure_logging(args.log_file, args.log_level or "info")
    if args.check:
        return asyncio.run(_check(args.model_path, args.precision))
    if args.status:
        from .backends.daemon import query_daemons

        print(json.dumps({"daemons": asyncio.run(query_daemons())}, indent=2))
        return 0

    from .server import create_server

    server = create_server(log_level=args.log_level)
    from .transport import run_server

    return run_server(server, args.tcp, args.token_file)


if __name__ == "__main__":
    sys.exit(main())
