"""The frame parser over every kind of bad Content-Length: the messages after a bad frame still come out.

Pure (no server): hypothesis builds streams of valid frames with one corrupted frame among them and
feeds them in arbitrary chunks; what the real server does with the results is in test_fuzz_server.py.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffgem_lsp.framing import GIVE_UP_S, STALL_S, FrameParser, Malformed, Message

SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def body(msg_id: int, text: str = "x") -> bytes:
    message = {"jsonrpc": "2.0", "id": msg_id, "method": "m", "params": {"text": text}}
    return json.dumps(message, ensure_ascii=False).encode()


def frame(data: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(data) if length is None else length, data)


# Each corruption of one frame; "kind" decides what the parser may report for it.
CORRUPTIONS = st.sampled_from(
    ["short", "long", "missing", "non-numeric", "huge", "garbage", "negative"]
)


def corrupt(kind: str, data: bytes, delta: int) -> bytes:
    if kind == "short":
        return frame(data, max(1, len(data) - delta))
    if kind == "long":
        return frame(data, len(data) + delta)
    if kind == "missing":
        return b"Content-Type: application/json\r\n\r\n" + data
    if kind == "non-numeric":
        return b"Content-Length: abc\r\n\r\n" + data
    if kind == "huge":
        return b"Content-Length: 99999999999999\r\n\r\n" + data
    if kind == "negative":
        return b"Content-Length: -5\r\n\r\n" + data
    return b"\x00garbage{not json\r\n" + data  # bytes with no header at all


def messages_of(events: list) -> list[int]:
    return [e.value["id"] for e in events if isinstance(e, Message) and isinstance(e.value, dict)]


@SETTINGS
@given(
    before=st.integers(0, 3),
    after=st.integers(1, 4),
    kind=CORRUPTIONS,
    delta=st.integers(1, 40),
    text=st.text(max_size=30),
    chunk=st.integers(1, 97),
)
def test_every_frame_after_a_bad_one_is_read(before, after, kind, delta, text, chunk):
    good_before = [body(i, text) for i in range(before)]
    bad_id = 1000
    good_after = [body(2000 + i, text) for i in range(after)]
    stream = b"".join(map(frame, good_before)) + corrupt(kind, body(bad_id, text), delta)
    stream += b"".join(map(frame, good_after))
    parser = FrameParser()
    events = []
    for i in range(0, len(stream), chunk):  # any chunking: pipes and sockets split anywhere
        events += parser.feed(stream[i : i + chunk])
    events += parser.stall(STALL_S)
    events += parser.stall(GIVE_UP_S)
    ids = messages_of(events)
    assert ids[:before] == list(range(before))
    # The good frames after the bad one all arrive, in order, each exactly once.
    assert [i for i in ids if i >= 2000] == [2000 + i for i in range(after)]
    # The bad frame's request is either read (a too-long length that ran into the next frame) or
    # reported as malformed with its id readable, so that the server can answer it: never lost.
    recovered = ids.count(bad_id)
    reported = [e for e in events if isinstance(e, Malformed) and e.request_id() == bad_id]
    assert recovered + len(reported) >= 1, events
    assert recovered <= 1
    assert not parser.pending()


def test_too_long_length_on_the_last_frame_is_read_when_input_stops():
    parser = FrameParser()
    data = body(7)
    assert parser.feed(frame(data, len(data) + 10)) == []
    assert parser.pending()
    events = parser.stall(STALL_S)
    assert messages_of(events) == [7] and events[0].note
    assert not parser.pending()


def test_truncated_last_body_is_reported_once_input_stops():
    parser = FrameParser()
    data = body(8)[:-5]
    assert parser.feed(frame(body(8))[:-5]) == []
    assert parser.stall(STALL_S) == []  # a slow sender may still be writing
    (event,) = parser.stall(GIVE_UP_S)
    assert isinstance(event, Malformed) and event.request_id() == 8 and event.data == data


def test_body_without_header_is_reported_with_its_id():
    parser = FrameParser()
    assert parser.feed(body(9)) == []
    (event,) = parser.stall(GIVE_UP_S)
    assert isinstance(event, Malformed) and event.request_id() == 9


def test_nan_and_bad_utf8_are_not_json():
    parser = FrameParser()
    nan = b'{"jsonrpc":"2.0","id":3,"method":"m","params":{"x":NaN}}'
    (event,) = parser.feed(frame(nan))
    assert isinstance(event, Malformed) and event.framed and event.request_id() == 3
    (event,) = parser.feed(frame(b'{"id":4,"x":"\xff\xfe"}'))
    assert isinstance(event, Malformed) and event.request_id() == 4


def test_lone_surrogate_escape_is_flagged():
    (event,) = FrameParser().feed(frame(b'{"text":"a\\ud800b"}'))
    assert isinstance(event, Message) and event.surrogates
    (event,) = FrameParser().feed(frame(b'{"text":"plain"}'))
    assert isinstance(event, Message) and not event.surrogates


def test_header_case_and_spacing_and_extra_headers():
    data = body(5)
    stream = (
        b"content-length:%d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
        % len(data)
    )
    assert messages_of(FrameParser().feed(stream + data)) == [5]
