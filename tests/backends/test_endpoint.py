"""Endpoint and key policy of the remote backend: TLS off loopback, keys only from env or a private file."""

from __future__ import annotations

import os

import pytest

from diffgem_lsp.backends.endpoint import EndpointError, load_api_key, parse_endpoint
from diffgem_lsp.backends.vllm_prompts import (
    Capabilities,
    chat_messages,
    completion_body,
    infill_seed,
)
from diffgem_protocol import GenerateParams


@pytest.mark.parametrize(
    "raw, base, uds",
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", None),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000", None),
        ("http://[::1]:8000", "http://[::1]:8000", None),
        ("https://gpu.example.com", "https://gpu.example.com", None),
        ("https://gpu.example.com:8443/vllm/v1", "https://gpu.example.com:8443/vllm", None),
        ("unix:/run/vllm.sock", "http://localhost", "/run/vllm.sock"),
        ("unix:///run/vllm.sock", "http://localhost", "/run/vllm.sock"),
    ],
)
def test_accepted_endpoints(raw, base, uds):
    endpoint = parse_endpoint(raw)
    assert (endpoint.base_url, endpoint.uds) == (base, uds)


@pytest.mark.parametrize(
    "raw, why",
    [
        ("http://gpu.example.com:8000", "use https://"),
        ("http://10.0.0.5:8000", "use https://"),
        ("http://localhost:8000", "use https://"),  # a name goes through the resolver
        ("https://user:pw@gpu.example.com", "must not carry credentials"),
        ("ftp://gpu", "not an http"),
        ("unix:relative.sock", "absolute path"),
        ("", "empty"),
    ],
)
def test_refused_endpoints(raw, why):
    with pytest.raises(EndpointError, match=why):
        parse_endpoint(raw)


def test_key_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("K", " sk-1 \n")
    secret = load_api_key("K", "")
    assert secret is not None and secret.reveal() == "sk-1"
    assert "sk-1" not in repr(secret) and "sk-1" not in f"{secret}"
    assert load_api_key("", "") is None
    with pytest.raises(EndpointError, match="not set"):
        load_api_key("DIFFGEM_UNSET_VARIABLE", "")
    with pytest.raises(EndpointError, match="not both"):
        load_api_key("K", str(tmp_path / "k"))
    path = tmp_path / "k"
    path.write_text("sk-2")
    os.chmod(path, 0o640)
    with pytest.raises(EndpointError, match="chmod 600"):
        load_api_key("", str(path))
    os.chmod(path, 0o600)
    secret = load_api_key("", str(path))
    assert secret is not None and secret.reveal() == "sk-2"


CAPS = Capabilities(
    model="m", layout="chat", xargs=True, canvas_length=16, vocab_size=100, eos_id=1, tokenize=True
)


def test_infill_seed_pins_eos_after_the_budget():
    seeded = infill_seed(5, CAPS, seed=3)
    assert seeded is not None
    canvas, pinned = seeded
    assert len(canvas) == 16 and canvas[5:] == [1] * 11 and pinned == list(range(5, 16))
    assert all(0 <= t < 100 for t in canvas)
    assert infill_seed(16, CAPS, seed=3) is None  # nothing left to pin
    no_xargs = Capabilities(model="m", layout="chat")
    assert infill_seed(5, no_xargs, seed=3) is None


def test_chat_body_and_messages():
    messages = chat_messages("a = ", "\nb = 2", None)
    assert messages[0]["content"].endswith("a = <HOLE>\nb = 2")
    edit = chat_messages("x\n", "\n", "y = 1")[0]["content"]
    assert "<EDIT>y = 1</EDIT>" in edit
    body = completion_body(GenerateParams(prefix="", suffix="", max_tokens=4), CAPS, [5, 6, 7])
    assert body["prompt"] == [5, 6, 7] and "add_special_tokens" not in body
    assert "suffix" not in body and "temperature" not in body
