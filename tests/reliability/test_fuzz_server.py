"""A JSON-RPC/LSP fuzzer against the real server over stdio: frames, bodies and params, bounded.

hypothesis (derandomized, so CI sees the same cases) builds broken frames, arbitrary JSON bodies and
ill-typed params for every method we serve; after each case a probe request must still be answered, and
every request that carried an id must have exactly one answer. Findings 3 and 4 of issue 14.
"""

from __future__ import annotations

import copy
import itertools
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from .lsp_process import MISSING_MODEL, LspProcess

URI = "file:///fuzz/a.py"
TEXT = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IDS = itertools.count(10_000)
# Codes a request may legitimately get here. Not -32603: an internal error means a handler crashed.
EXPECTED_ERRORS = {-32700, -32600, -32601, -32602, -32002, -32800, -32801, -32803}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    lsp = LspProcess(log=tmp_path_factory.mktemp("log") / "server.log")
    assert lsp.initialize({**MISSING_MODEL, "debounceMs": 0}, initialized=False)["result"]
    lsp.open(URI, TEXT)
    yield lsp
    lsp.kill()


def probe(lsp: LspProcess) -> None:
    answer = lsp.call("diffgem/probe", {}, timeout=30)
    assert answer is not None, "the server stopped answering"
    assert answer["error"]["code"] == -32601


def frame(body: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body) if length is None else length, body)


def request_body(msg_id: int) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": msg_id, "method": "diffgem/echo", "params": {}}
    ).encode()


CORRUPT = {
    "short": lambda b, d: frame(b, max(1, len(b) - d)),
    "long": lambda b, d: frame(b, len(b) + d),
    "missing": lambda b, d: b"X-Other: %d\r\n\r\n" % d + b,
    "non-numeric": lambda b, d: b"Content-Length: 0x%x\r\n\r\n" % d + b,
    "negative": lambda b, d: b"Content-Length: -%d\r\n\r\n" % d + b,
    "huge": lambda b, d: b"Content-Length: 9%d00000000000\r\n\r\n" % d + b,
    "garbage": lambda b, d: bytes(range(d % 32)) + b"\r\n" + b,
    "no-separator": lambda b, d: b"Content-Length: %d\r\n" % len(b) + b,
}


@FUZZ
@given(
    kind=st.sampled_from(sorted(CORRUPT)),
    delta=st.integers(1, 60),
    before=st.integers(0, 2),
    after=st.integers(1, 3),
)
def test_frames(server, kind, delta, before, after):
    good_before = [next(IDS) for _ in range(before)]
    bad = next(IDS)
    good_after = [next(IDS) for _ in range(after)]
    stream = b"".join(frame(request_body(i)) for i in good_before)
    stream += CORRUPT[kind](request_body(bad), delta)
    stream += b"".join(frame(request_body(i)) for i in good_after)
    server.send_bytes(stream)
    probe(server)
    for msg_id in good_before + good_after:
        assert len(server.responses[msg_id]) == 1, (msg_id, server.responses[msg_id])
    assert len(server.responses.get(bad, [])) <= 1


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ENVELOPE_KEYS = st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error"])


@FUZZ
@given(body=JSON | st.dictionaries(ENVELOPE_KEYS, JSON, max_size=5))
def test_bodies(server, body):
    request = isinstance(body, dict) and "method" in body and type(body.get("id")) is int
    if request:
        assume(body["method"] not in ("exit", "shutdown"))  # those would end the shared session
        body["id"] = next(IDS)  # a fresh id, so that its answers can be counted
    server.send_bytes(frame(json.dumps(body).encode()))
    probe(server)
    if request:  # whatever else is wrong with it, a request with a usable id is answered once
        assert len(server.responses.get(body["id"], [])) == 1, (
            body,
            server.responses.get(body["id"]),
        )


POSITION = {"line": 1, "character": 4}
RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 4}}
TEMPLATES = {
    "textDocument/inlineCompletion": {
        "textDocument": {"uri": URI},
        "position": POSITION,
        "context": {"triggerKind": 2},
    },
    "textDocument/completion": {
        "textDocument": {"uri": URI},
        "position": POSITION,
        "context": {"triggerKind": 1},
    },
    "textDocument/codeAction": {
        "textDocument": {"uri": URI},
        "range": RANGE,
        "context": {"diagnostics": [], "only": ["refactor.rewrite"]},
    },
    "codeAction/resolve": {
        "title": "Rewrite selection",
        "kind": "refactor.rewrite",
        "data": {"uri": URI, "range": RANGE, "version": 1},
    },
    "workspace/executeCommand": {"command": "diffgem.status", "arguments": []},
}


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def replace(params, path, value):
    if not path:
        return value
    params = copy.deepcopy(params)
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return params


LEAVES = st.sampled_from(
    [
        None,
        -1,
        0,
        1,
        2**31,
        10**12,
        1e12,
        1e400,
        -0.5,
        1.5,
        True,
        "",
        "abc",
        "\ud800",
        [],
        {},
        [1],
        {"a": 1},
    ]
)


@FUZZ
@given(method=st.sampled_from(sorted(TEMPLATES)), data=st.data(), leaf=LEAVES | JSON)
def test_params(server, method, data, leaf):
    template = TEMPLATES[method]
    path = data.draw(st.sampled_from(list(paths(template))))
    params = replace(template, path, leaf)
    msg_id = server.request(method, params, msg_id=next(IDS))
    # Model-backed requests wait for the (missing) model: allow them the time a load failure takes.
    answer = server.response(msg_id, timeout=120)
    probe(server)
    assert answer is not None, (method, params)
    assert len(server.responses[msg_id]) == 1
    if "error" in answer:
        assert answer["error"]["code"] in EXPECTED_ERRORS, (method, params, answer)
