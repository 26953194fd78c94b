"""LSP base-protocol framing: bytes from the client in, parsed JSON messages (or bad frames) out.

Sans-IO (no asyncio, no pygls): `rpc.py` feeds it what the transport reads and turns bad frames into
JSON-RPC errors. A bad `Content-Length` never leaves the stream out of step for good: the parser looks
for the next header and carries on (pygls 2.1.1 `io_.run_async` waits on it forever instead).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# The base protocol's one required header (https://microsoft.github.io/language-server-protocol/
# specifications/lsp/3.17/specification/#headerPart). Searched anywhere in a line, case-insensitively,
# so that a header glued to the tail of a too-short body is still found.
HEADER = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
HEADER_END = re.compile(rb"\r?\n\r?\n")
# A `\uD800`-`\uDFFF` escape: the body may decode to a lone surrogate, which no encoder accepts.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
REQUEST_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}(?![\d.eE])|"(?:[^"\\\r\n]|\\.){0,200}")')

MAX_BODY = 64 << 20  # the largest body accepted; a larger length is treated as a bad header
MAX_HEADER = 8 << 10  # header bytes kept while waiting for the blank line that ends them
# Seconds without input after which a body cut short, or an incomplete header, is given up on. A body
# that is already complete JSON (Content-Length too long, nothing after it) is taken at STALL_S.
STALL_S = 0.5
GIVE_UP_S = 5.0


@dataclass(frozen=True)
class Message:
    """A body that parsed as JSON (any JSON value; the envelope is checked by the caller)."""

    value: Any
    note: str | None = None  # set when the frame was bad but its body could still be read
    surrogates: bool = False  # the body has surrogate escapes: strings may hold lone surrogates


@dataclass(frozen=True)
class Malformed:
    """Bytes that should have been a message. `framed`: a whole body of the declared length."""

    reason: str
    data: bytes
    framed: bool = False

    def request_id(self) -> int | str | None:
        """The id of the request these bytes carried, if one can be read (to answer -32700)."""
        match = REQUEST_ID.search(self.data)
        if match is None:
            return None
        try:
            value = json.loads(match.group(1))
        except ValueError:
            return None
        return value if isinstance(value, (int, str)) else None


Event = Message | Malformed


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN/Infinity; RFC 8259 does not


def _parse(body: bytes, note: str | None = None) -> Message | None:
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return Message(value, note, SURROGATE_ESCAPE.search(body) is not None)


def _leading(data: bytes) -> tuple[Message, int] | None:
    """The JSON value at the start of `data` followed by other bytes, and its length in bytes."""
    text = data.decode("utf-8", "surrogateescape")  # invalid bytes survive as \udcXX, re-encodable
    start = len(text) - len(text.lstrip())
    try:
        _, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    size = len(text[:end].encode("utf-8", "surrogateescape"))
    message = _parse(data[:size])  # strict again: the value itself must be valid UTF-8 JSON
    return (message, size) if message is not None and size < len(data) else None


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class FrameParser:
    """Incremental parser: `feed` what arrives, call `stall` when nothing has arrived for a while."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.length: int | None = None  # declared body length once a header block was read
        self.skip_reason: str | None = None  # set while looking for the next header after a bad one

    def pending(self) -> bool:
        """True while some bytes wait for more input (the transport then calls `stall` when idle)."""
        return bool(self.buf) or self.length is not None

    def feed(self, data: bytes) -> list[Event]:
        self.buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def stall(self, idle_s: float) -> list[Event]:
        """Input stopped `idle_s` seconds ago: settle what the bytes so far can settle."""
        events: list[Event] = []
        if self.length is not None:
            # Fewer bytes than declared: a whole JSON value, or a following header, means the
            # declared length was too long.
            if not self._take_leading(bytes(self.buf), events):
                self._split_at_header(bytes(self.buf), events)
            if self.length is not None:
                whole = _parse(bytes(self.buf), f"Content-Length {self.length} but the body ended")
                if whole is not None:
                    events.append(whole)
                elif idle_s >= GIVE_UP_S:
                    events.append(
                        Malformed(
                            f"body shorter than Content-Length {self.length}", bytes(self.buf)
                        )
                    )
                else:
                    return events
                self.buf.clear()
                self.length = None
        elif self.skip_reason is not None and self.buf:
            events.append(Malformed(self.skip_reason, bytes(self.buf)))
            self.buf.clear()
            self.skip_reason = None
        elif self.buf and idle_s >= GIVE_UP_S:
            if self.buf.strip():
                events.append(Malformed("incomplete header", bytes(self.buf)))
            self.buf.clear()
        while self._step(events):
            pass
        return events

    # -- internals -----------------------------------------------------------------------------
    def _step(self, events: list[Event]) -> bool:
        """Consume one unit (header block, body, skipped bytes) if it is complete; False to wait."""
        if self.length is not None:
            return self._body(events)
        if self.skip_reason is not None:
            return self._skip(events)
        return self._header(events)

    def _header(self, events: list[Event]) -> bool:
        end = HEADER_END.search(self.buf)
        if end is None:
            if len(self.buf) > MAX_HEADER and HEADER.search(self.buf) is None:
                # Garbage without a blank line: drop all but a tail that may hold half a header.
                events.append(Malformed("bytes outside any message", bytes(self.buf[:-64])))
                del self.buf[:-64]
            return False
        block = bytes(self.buf[: end.start()])
        del self.buf[: end.end()]
        headers = list(HEADER.finditer(block))
        if not headers:
            if block.strip():
                # Header lines without a length (or a body with no header): the body's end is unknown,
                # so skip to the next header; the skipped bytes are reported (and answered by id).
                self.buf[:0] = block + b"\r\n\r\n"
                self.skip_reason = "missing Content-Length header"
            return True
        header = headers[-1]  # earlier matches belong to stray text before the real header
        stray = block[: header.start()]
        if stray.strip():
            events.append(Malformed("bytes between messages", stray))
        value = header.group(1).strip()
        if not value.isdigit() or int(value) > MAX_BODY:
            shown = value[:40].decode("ascii", "replace")
            self.skip_reason = f"invalid Content-Length {shown!r}"
            return True
        self.length = int(value)
        return True

    def _body(self, events: list[Event]) -> bool:
        assert self.length is not None
        if len(self.buf) < self.length:
            return False
        body = bytes(self.buf[: self.length])
        message = _parse(body)
        if message is not None:
            events.append(message)
            del self.buf[: self.length]
            self.length = None
            return True
        if not self._take_leading(body, events) and not self._split_at_header(body, events):
            events.append(Malformed("body is not valid JSON", body, framed=True))
            del self.buf[: self.length]
            self.length = None
        return True

    def _take_leading(self, body: bytes, events: list[Event]) -> bool:
        """A declared length longer than the body: take the JSON value, leave what follows it."""
        lead = _leading(body)
        if lead is None:
            return False
        message, size = lead
        events.append(
            Message(
                message.value,
                f"Content-Length {self.length} longer than the body",
                message.surrogates,
            )
        )
        del self.buf[:size]
        self.length = None
        return True

    def _split_at_header(self, body: bytes, events: list[Event]) -> bool:
        """A declared length that ran into the next message: cut the body where its header starts."""
        match = HEADER.search(body, 1)
        if match is None:
            return False
        head = body[: match.start()]
        note = f"Content-Length {self.length} ran into the next message"
        message = _parse(head, note)
        events.append(message if message is not None else Malformed(note, head))
        del self.buf[: match.start()]
        self.length = None
        return True

    def _skip(self, events: list[Event]) -> bool:
        match = HEADER.search(self.buf, 1)
        if match is None:
            if len(self.buf) > MAX_BODY:
                del self.buf[:-64]
            return False
        assert self.skip_reason is not None
        events.append(Malformed(self.skip_reason, bytes(self.buf[: match.start()])))
        del self.buf[: match.start()]
        self.skip_reason = None
        return True
