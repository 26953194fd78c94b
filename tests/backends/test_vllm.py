"""The vLLM backend against the loopback stand-in (tests/backends/vllm_standin.py), real embedded model.

No vLLM runs on these CPU machines (issue 10): the stand-in follows vLLM's request validation and answer
shapes, and its completions come from the embedded checkpoint, so the tokens are real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import ssl
import subprocess

import aiohttp
import pytest

from diffgem_lsp.backends.vllm import (
    EndpointDown,
    RemoteError,
    RemoteSettings,
    VllmBackend,
)
from diffgem_lsp.backends.vllm_prompts import CHAT_INSTRUCTION
from diffgem_lsp.settings import Settings
from diffgem_protocol import GenerateParams, SamplerSettings

from .vllm_standin import EmbeddedModel, StandinServer, UnixStandinServer, dead_port_url

KEY = "sk-standin-0123456789abcdef"
HOLE = GenerateParams(
    prefix="def add(a, b):\n    return ",
    suffix="\n\n\nprint(add(1, 2))\n",
    max_tokens=8,
    sampler=SamplerSettings(max_steps=4),
)


@pytest.fixture(scope="module")
def model() -> EmbeddedModel:
    return EmbeddedModel()


@pytest.fixture
def server(model):
    srv = StandinServer(model, api_key=KEY).start()
    yield srv
    srv.stop()


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("DIFFGEM_TEST_KEY", KEY)
    return "DIFFGEM_TEST_KEY"


def backend(url: str, env: str = "", states: list | None = None, **kw) -> VllmBackend:
    sink = states if states is not None else []
    # Generous deadlines unless a test is about them: the stand-in runs the model in this process,
    # and the product's 30 s / 3 s (made for a GPU server) could pass on a loaded CI machine.
    kw = {"timeout_s": 300.0, "connect_timeout_s": 60.0, **kw}
    return VllmBackend(
        Settings(backend="vllm", endpoint=url, api_key_env=env),
        on_state=lambda s, m: sink.append((s, m)),
        remote=RemoteSettings(endpoint=url, api_key_env=env, **kw),
    )


async def test_probe_then_infill_with_pinned_eos(server, key_env):
    b = backend(server.url, key_env)
    await b.start()
    caps = b.capabilities
    assert caps is not None and (caps.layout, caps.canvas_length, caps.vocab_size) == (
        "fim",
        32,
        8192,
    )
    assert caps.pinning and not caps.drafts
    result = await b.generate(HOLE)
    body = [x for x in server.record.bodies if x.get("stream")][-1]
    assert "suffix" not in body and body["prompt"].endswith("<fim_middle>")
    xargs = body["vllm_xargs"]
    # The budget (8) is shorter than the canvas (32): EOS is pinned after it.
    assert xargs["diffusion_pinned"] == list(range(8, 32))
    assert xargs["diffusion_seed_canvas"][8:] == [caps.eos_id] * 24
    assert xargs["diffusion_max_steps"] == 4
    assert result.text.strip() and 0 < len(result.token_ids) <= 8
    # The stand-in counts a request once its handler thread has written the end of the stream, which
    # can be after the client has read it (CI on a loaded machine saw 0 here).
    await _until(lambda: server.record.completed == 1)
    await b.stop()


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> EmbeddedModel:
    """A DiffusionGemma-it-style checkpoint (Gemma chat template, no FIM tokens; random weights) behind
    the stand-in: what the backend meets on a server running the instruction-tuned model."""
    from tests.chat_checkpoint import make_chat_checkpoint
    from tests.conftest import stdlib_texts

    path = make_chat_checkpoint(tmp_path_factory.mktemp("chat") / "ckpt", stdlib_texts(), seed=2)
    return EmbeddedModel(str(path))


async def test_chat_layout_end_to_end(chat_model, key_env):
    server = StandinServer(chat_model, api_key=KEY).start()
    try:
        b = backend(server.url, key_env)
        await b.start()
        caps = b.capabilities
        # No FIM tokens in the served tokenizer: the probe picks the chat layout; pinning stays.
        assert caps is not None and caps.layout == "chat" and caps.pinning
        result = await b.generate(HOLE)
        assert result.token_ids and result.text, "empty fill"  # the chat path produced a middle
        assert len(result.token_ids) <= HOLE.max_tokens  # the EOS pinned after the budget held
        asked = [x for x in server.record.bodies if "messages" in x][-1]
        (turn,) = asked["messages"]
        assert turn["content"] == CHAT_INSTRUCTION + HOLE.prefix + "<HOLE>" + HOLE.suffix
        sent = [x for x in server.record.bodies if x.get("stream")][-1]
        # The prompt went as the ids of the server's own chat template, rendered by /tokenize.
        template = chat_model.apply_chat_template(
            asked["messages"], True, asked["chat_template_kwargs"]
        )
        assert sent["prompt"] == template
        text = chat_model.tokenizer.decode(sent["prompt"])
        assert text.startswith("<bos><start_of_turn>user\n") and text.endswith(
            "<start_of_turn>model\n"
        )
        assert sent["vllm_xargs"]["diffusion_pinned"] == list(
            range(HOLE.max_tokens, caps.canvas_length or 0)
        )
        # A rewrite: the <EDIT> turn, and the old text's ids start the canvas.
        old = "a - b"
        edit = GenerateParams(
            prefix=HOLE.prefix, suffix="\n", old_text=old, max_tokens=16, sampler=HOLE.sampler
        )
        rewritten = await b.generate(edit)
        assert rewritten.token_ids
        (turn,) = [x for x in server.record.bodies if "messages" in x][-1]["messages"]
        assert "<EDIT>" + old + "</EDIT>" in turn["content"]
        sent = [x for x in server.record.bodies if x.get("stream")][-1]
        old_ids = chat_model.tokenize(old, False)
        assert sent["vllm_xargs"]["diffusion_seed_canvas"][: len(old_ids)] == old_ids
        await b.stop()
    finally:
        server.stop()


async def test_edit_starts_from_the_old_text(server, key_env, model):
    b = backend(server.url, key_env)
    old = "a - b"
    params = GenerateParams(
        prefix="def add(a, b):\n    return ",
        suffix="\n",
        old_text=old,
        max_tokens=16,
        sampler=SamplerSettings(max_steps=2),
    )
    result = await b.generate(params)
    body = [x for x in server.record.bodies if x.get("stream")][-1]
    seed = body["vllm_xargs"]["diffusion_seed_canvas"]
    old_ids = model.tokenize(old, False)
    assert seed[: len(old_ids)] == old_ids and "diffusion_pinned" not in body["vllm_xargs"]
    assert result.token_ids  # the model wrote something from that start
    await b.stop()


async def test_answers_keep_the_connection_alive(server, key_env):
    b = backend(server.url, key_env)
    await b.start()
    first = await b.generate(HOLE)
    second = await b.generate(HOLE)
    assert first.token_ids and second.token_ids
    await _until(lambda: server.record.completed == 2)
    # The probe and both streamed answers went over one connection: each answer was read to its
    # end after [DONE], so the client kept the connection in its pool instead of closing it.
    assert server.record.connections == 1
    await b.stop()


async def test_unix_socket_endpoint(model, key_env, tmp_path):
    # vLLM's --uds: plain HTTP over a unix socket, the key still sent.
    srv = UnixStandinServer(model, str(tmp_path / "vllm.sock"), api_key=KEY).start()
    try:
        b = backend(srv.url, key_env)
        await b.start()
        assert b.state == "ready", b.error
        first = await b.generate(HOLE)
        second = await b.generate(HOLE)
        assert first.token_ids and second.token_ids
        await _until(lambda: srv.record.completed == 2)
        assert srv.record.connections == 1  # kept alive over the socket too
        assert (await b.status())["endpoint"] == f"vLLM at unix:{tmp_path / 'vllm.sock'}"
        await b.stop()
    finally:
        srv.stop()


async def test_unverified_tls_is_refused_before_any_request(model, key_env, tmp_path):
    # https:// is verified against the system's trust store: a self-signed server is refused during
    # the handshake, so neither the key nor any code reaches it.
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    srv = StandinServer(model, api_key=KEY)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    srv.start()
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}"
        b = backend(url, key_env)
        await b.start()
        assert b.state == "error" and "Certificate" in (b.error or ""), b.error
        assert srv.record.bodies == [] and srv.record.connections == 0
        await b.stop()
    finally:
        srv.stop()


async def test_standin_rejects_suffix_like_vllm(server):
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{server.url}/v1/completions",
            json={"model": "diffgem-embedded", "prompt": "x", "suffix": "y"},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as r:
            status, answer = r.status, await r.json()
    assert status == 400
    assert answer["error"] == {
        "message": "suffix is not currently supported",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }


async def test_wrong_key_one_message_and_never_logged(server, monkeypatch, caplog):
    monkeypatch.setenv("DIFFGEM_WRONG_KEY", "sk-wrong-key-do-not-log")
    states: list = []
    b = backend(server.url, "DIFFGEM_WRONG_KEY", states)
    caplog.set_level(logging.DEBUG)
    await b.start()  # a failure is a state, not an exception
    assert b.state == "error" and "rejected the API key" in (b.error or "")
    with pytest.raises(RemoteError, match="rejected the API key"):
        await b.wait_ready(5)
    for _ in range(3):
        with pytest.raises(RemoteError):
            await b.generate(HOLE)
    errors = [m for s, m in states if s == "error"]
    assert len(errors) == 1 and "401" in errors[0]
    assert "sk-wrong" not in caplog.text and "sk-wrong" not in json.dumps(await b.status())
    await b.stop()


async def test_key_file_must_be_private(server, tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    os.chmod(path, 0o644)
    b = VllmBackend(Settings(backend="vllm", endpoint=server.url, api_key_file=str(path)))
    await b.start()
    assert b.state == "error" and "chmod 600" in (b.error or "")
    with pytest.raises(RemoteError, match="chmod 600"):
        await b.generate(HOLE)
    os.chmod(path, 0o600)
    await b.restart(b.settings)
    assert b.state == "ready"
    await b.stop()


async def test_slow_answer_hits_the_deadline_and_is_aborted(server, key_env):
    b = backend(server.url, key_env, timeout_s=1.0)
    await b.start()
    server.faults.delay_s = 30
    with pytest.raises(RemoteError, match="did not finish within 1 s"):
        await b.generate(HOLE)
    await _until(lambda: server.record.aborted == 1)
    await b.stop()


async def test_superseded_request_closes_the_http_request(server, key_env):
    b = backend(server.url, key_env)
    await b.start()
    server.faults.hang = True
    task = asyncio.ensure_future(b.generate(HOLE))
    await _until(lambda: any(x.get("stream") for x in server.record.bodies))
    task.cancel()  # what the session does when a newer keystroke supersedes this request
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: server.record.aborted == 1)  # the server saw the client go
    assert server.record.completed == 0
    await b.stop()


async def test_disconnect_mid_stream_then_recovers(server, key_env):
    b = backend(server.url, key_env)
    await b.start()
    server.faults.disconnect_after = 0
    with pytest.raises(RemoteError, match="closed the connection mid-answer"):
        await b.generate(HOLE)
    server.faults.disconnect_after = None
    result = await b.generate(HOLE)  # the next request opens a fresh connection
    assert result.token_ids and b.state == "ready"
    await b.stop()


async def test_malformed_json(server, key_env):
    b = backend(server.url, key_env)
    await b.start()
    server.faults.malformed = True
    with pytest.raises(RemoteError, match="malformed JSON"):
        await b.generate(HOLE)
    await b.stop()


async def test_server_without_diffusion_xargs_hides_pinning(server, key_env):
    server.faults.ignore_xargs = True
    b = backend(server.url, key_env)
    await b.start()
    assert b.capabilities is not None and not b.capabilities.pinning
    assert not b.capabilities.seed_canvas
    result = await b.generate(HOLE)
    body = [x for x in server.record.bodies if x.get("stream")][-1]
    assert "vllm_xargs" not in body and result.token_ids
    await b.stop()


async def test_endpoint_down_reports_once_and_falls_back(server, key_env):
    dead = dead_port_url()
    states: list = []
    b = backend(dead, key_env, states)
    await b.start()
    assert b.state == "error"
    for _ in range(3):
        with pytest.raises(EndpointDown):
            await b.generate(HOLE)
    assert len([m for s, m in states if s == "error"]) == 1
    assert "unreachable" in b.error  # type: ignore[operator]
    # With a fallback (here: a second backend on a live server), the request is answered there.
    live = backend(server.url, key_env)
    b.fallback = live
    result = await b.generate(HOLE)
    assert result.token_ids and b.stats["fallbacks"] == 1
    await live.stop()
    await b.stop()


async def test_probe_sends_nothing_that_costs_a_canvas(server, key_env):
    b = backend(server.url, key_env)
    await b.start()
    # Both xargs probes are refused at admission: no completion ran on the model.
    assert server.record.completed == 0 and server.record.model_ms == []
    await b.stop()


async def _until(condition, limit: float = 120.0) -> None:
    """Wait for a server-side effect (not a timing assertion: the limit only stops a broken test)."""
    for _ in range(int(limit / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")
