"""JSON-RPC message handling in front of pygls: every request gets exactly one answer, whatever arrives.

Takes parsed messages from `framing`, checks the envelope and the LSP lifecycle, types the params, and
only then hands them to pygls; the transport (stdio, TCP) lives in `transport.py`. No torch, no model.
Each check fixes a pygls 2.1.1 behaviour at its cause (see `UPSTREAM` for what we would send there).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import cattrs
from cattrs.v import format_exception
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method

from .framing import Malformed, Message

log = logging.getLogger("diffgem.rpc")

# JSON-RPC 2.0 (https://www.jsonrpc.org/specification#error_object) and LSP 3.17 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002

# Fixes kept here that belong in pygls; each is covered by a test in tests/reliability/.
UPSTREAM = (
    "io_.run_async: resynchronise after a bad Content-Length instead of waiting forever",
    "JsonRPCProtocol.structure_message: answer -32602 (with the cattrs path) when params do not "
    "deserialise, instead of raising out of the reader loop unanswered",
    "JsonRPCProtocol.handle_message: answer requests after shutdown with InvalidRequest (LSP 3.17)",
    "JsonRPCProtocol: answer -32700/-32600 for bodies that are not JSON or not a JSON-RPC object",
    "JsonRPCProtocol._execute_handler: drop a notification's future when it completes (it leaks)",
    "LanguageServerProtocol: -32002 for requests before initialize; exit's code is lost when "
    "sys.exit is raised inside a handler (start_io swallows SystemExit and returns 0)",
    "JSONRPCServer.start_tcp: one connection per session (a second one swaps the writer)",
    "TextDocument: reject edits whose range end precedes its start",
    "LanguageServerProtocol.lsp_shutdown: cancel pending futures over a snapshot (cancelling a "
    "generator handler's concurrent Future runs _send_handler_result at once, which pops from the "
    "dict being iterated: 'dictionary changed size during iteration')",
)

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    """Replace lone surrogates (JSON `\\ud800` escapes) by U+FFFD in every string of a message.

    U+FFFD is one code unit in UTF-16 and one code point, like the surrogate it replaces, so positions
    in the client's encoding stay where they were; a lone surrogate cannot be encoded (UTF-8, the
    worker pipe, tree-sitter), so without this every request on the document would fail.
    """
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def _camel_path(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


def describe_params_error(exc: BaseException) -> str:
    """One line naming each bad field by its JSON path, e.g. `$.params.position.line: ...`."""

    def fmt(error: BaseException, kind: type | None) -> str:
        text = format_exception(error, kind)
        return f"{text} ({error})" if isinstance(error, ValueError) and str(error) else text

    try:
        lines = cattrs.transform_error(exc, path="$", format_exception=fmt)
    except Exception:  # a shape transform_error does not know: fall back to the exception itself
        lines = [f"{type(exc).__name__}: {exc}"]
    return "; ".join(_camel_path(line) for line in lines)[:1000]


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


class DiffgemProtocol(LanguageServerProtocol):
    """pygls' LSP protocol with the checks that make every request answered exactly once."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.initialize_received = False
        self.shutdown_received = False
        self.exit_code: int | None = None
        self.on_exit: Callable[[], None] = lambda: None

    # -- entry point from the transport --------------------------------------------------------
    def receive(self, event: Message | Malformed) -> None:
        """Handle one framing event; never raises."""
        try:
            if isinstance(event, Malformed):
                self._malformed(event)
            else:
                if event.note:
                    log.warning("bad frame, body recovered: %s", event.note)
                value = _without_surrogates(event.value) if event.surrogates else event.value
                self._message(value)
        except Exception:  # a bug here must not stop the reader loop
            log.exception("failed to handle a message")

    def _malformed(self, event: Malformed) -> None:
        msg_id = event.request_id()
        log.warning(
            "%s (%d bytes)%s",
            event.reason,
            len(event.data),
            f"; answering request {msg_id!r}" if msg_id is not None else "",
        )
        # A parse error with no readable id is answered with id null, as JSON-RPC 2.0 asks, only for
        # a whole body; stray bytes between frames are just logged.
        if msg_id is not None or event.framed:
            self.send_error(msg_id, PARSE_ERROR, f"parse error: {event.reason}")

    def _message(self, value: Any) -> None:
        if not isinstance(value, dict):
            kind = (
                "a batch (LSP has no batches)" if isinstance(value, list) else type(value).__name__
            )
            self.send_error(
                None, INVALID_REQUEST, f"invalid request: expected an object, got {kind}"
            )
            return
        has_id = "id" in value
        msg_id = value.get("id")
        if has_id and not _is_id(msg_id):
            self.send_error(
                None, INVALID_REQUEST, "invalid request: id must be a string or integer"
            )
            return
        if value.get("jsonrpc") != "2.0":
            self._reject(value, INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
            return
        method = value.get("method")
        if "method" not in value:
            self._response(value)
            return
        if not isinstance(method, str):
            self._reject(value, INVALID_REQUEST, "invalid request: method must be a string")
            return
        if method == types.EXIT:
            self._exit()
            return
        if not self._admitted(value, method, has_id):
            return
        message = self._structure(value, method, has_id)
        if message is not None:
            if method == types.INITIALIZE:
                self.initialize_received = True
            self.handle_message(message)

    def _admitted(self, value: dict[str, Any], method: str, is_request: bool) -> bool:
        """The LSP lifecycle (3.17 "Server lifetime"): what may arrive before and after the session."""
        if not self.initialize_received:
            if method == types.INITIALIZE and is_request:
                return True  # marked received once its params are valid (a retry is allowed)
            if is_request:
                self.send_error(
                    value["id"], SERVER_NOT_INITIALIZED, f"server not initialized: {method}"
                )
            else:
                log.info("dropped %s before initialize", method)
            return False
        if method == types.INITIALIZE:
            self._reject(value, INVALID_REQUEST, "initialize was already received")
            return False
        if self.shutdown_received:
            if is_request:
                self.send_error(value["id"], INVALID_REQUEST, "server is shutting down")
            return False
        if method == types.SHUTDOWN:
            self.shutdown_received = True
        return True

    def _structure(self, value: dict[str, Any], method: str, is_request: bool) -> Any:
        """The typed message, or None after answering -32602 (requests) or logging (notifications)."""
        kind = self.get_message_type(method)
        try:
            if kind is None:
                return self.structure_message(value)  # unknown method: pygls answers -32601
            return self._converter.structure(value, kind)
        except Exception as exc:
            cause = exc.__cause__ if kind is None and exc.__cause__ else exc
            problem = describe_params_error(cause)
            if is_request:
                self.send_error(
                    value["id"], INVALID_PARAMS, f"invalid params for {method}: {problem}"
                )
            else:
                log.warning("dropped notification %s: invalid params: %s", method, problem)
            return None

    def _response(self, value: dict[str, Any]) -> None:
        """A client's answer to one of our requests: never leave the waiting future hanging."""
        msg_id: Any = value.get("id")
        if not _is_id(msg_id) or ("result" not in value and "error" not in value):
            log.warning("dropped a message with neither method nor a valid response shape")
            return
        try:
            message = self.structure_message(value)
        except Exception as exc:
            future = self._request_futures.pop(msg_id, None)
            self._result_types.pop(msg_id, None)
            if future is not None and not future.done():
                future.set_exception(exc)
            log.warning(
                "bad response to %r: %s", msg_id, describe_params_error(exc.__cause__ or exc)
            )
            return
        self.handle_message(message)

    def _reject(self, value: dict[str, Any], code: int, text: str) -> None:
        """Answer a bad request by its id; a bad notification has no one to answer: log it."""
        if "id" in value:
            self.send_error(value["id"], code, text)
        else:
            log.warning("dropped notification %r: %s", value.get("method"), text)

    def _exit(self) -> None:
        # LSP 3.17 `exit`: code 0 if a shutdown request came first, else 1. Returned by the transport
        # (pygls raises SystemExit inside the handler, and start_io swallows it: the code is lost).
        self.exit_code = 0 if self.shutdown_received else 1
        log.info("exit (code %d)", self.exit_code)
        self.on_exit()

    # -- replies -------------------------------------------------------------------------------
    def send_error(self, msg_id: int | str | None, code: int, text: str) -> None:
        # A plain dict: pygls' ResponseErrorMessage drops `"id": null`, which JSON-RPC requires.
        self._send_data(
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": f"diffgem: {text}"}}
        )

    # -- pygls overrides -----------------------------------------------------------------------
    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):  # type: ignore[no-untyped-def]
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        # pygls stores the future of every coroutine/generator handler under msg_id, but pops it only
        # when answering a request: a notification's future (a fresh uuid each) stayed for good.
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(partial(self._forget, msg_id))

    def _forget(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args):  # type: ignore[no-untyped-def]
        """pygls' shutdown, cancelling the pending futures over a snapshot of them.

        A generator handler's future is a concurrent.futures.Future, whose `cancel()` runs its done
        callbacks at once; pygls' `_send_handler_result` (and our `_forget`) then pop from the very
        dict pygls is iterating (pygls/protocol/language_server.py, `lsp_shutdown`), and shutdown
        fails with "dictionary changed size during iteration".
        """
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):  # type: ignore[no-untyped-def]
        """pygls' incremental sync, refusing edits whose range ends before it starts.

        pygls applies such an edit as if the text between end and start were written twice; the
        document then differs from the editor's, so it is dropped (requests on it answer "not open")
        and the user is told to reopen it.
        """
        uri = params.text_document.uri
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                if (start.line, start.character) > (end.line, end.character):
                    self._drop_document(
                        uri, f"an edit's range ends before it starts ({start} > {end})"
                    )
                    return
        yield from super().lsp_text_document__did_change(params)

    def _drop_document(self, uri: str, reason: str) -> None:
        log.error("rejected textDocument/didChange for %s: %s", uri, reason)
        self.workspace.remove_text_document(uri)
        self.notify(
            types.WINDOW_SHOW_MESSAGE,
            types.ShowMessageParams(
                type=types.MessageType.Warning,
                message=f"diffgem: rejected an edit to {uri}: {reason}. Close and reopen the file.",
            ),
        )
