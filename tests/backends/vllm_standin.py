"""A loopback stand-in for `vllm serve`: a real HTTP server on 127.0.0.1 with vLLM's request and answer shapes.

For tests and benchmarks only. It checks requests as vLLM does (`--api-key` on /v1 routes, 400 on `suffix`,
`vllm_xargs` as vllm/utils/diffusion.py validates them, error bodies shaped like vLLM's ErrorResponse) and
answers from the real embedded model in-process (real tokens; one canvas per streamed chunk, as vLLM
streams diffusion output). It is not vLLM: no batching, no paged KV cache; faults are switched on per test.
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVED_NAME = "diffgem-embedded"


class ValidationError(ValueError):
    pass


@dataclass
class Faults:
    """What the next completions do wrong. Tests flip these between requests."""

    delay_s: float = 0.0  # slow: wait this long before the first chunk
    hang: bool = False  # send the headers, then nothing until the client goes away
    disconnect_after: int | None = None  # close the socket after this many chunks
    malformed: bool = False  # the first chunk is not JSON
    ignore_xargs: bool = False  # behave like a server that does not validate diffusion arguments


@dataclass
class Record:
    """What the server saw: request bodies and how each streamed answer ended."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    aborted: int = 0  # answers the client closed before the end (vLLM aborts those requests)
    completed: int = 0
    model_ms: list[float] = field(default_factory=list)
    # Per streamed answer, the stand-in's own time outside the model: from its request line read to its
    # last byte written, less model_ms (HTTP parsing and writing, JSON, validation, detokenising). vLLM's
    # server (uvicorn, FastAPI) has its own cost here; benchmarks report this one beside the overhead.
    server_ms: list[float] = field(default_factory=list)
    connections: int = 0  # TCP connections accepted (a client that keeps its connection alive: 1)


class EmbeddedModel:
    """The real embedded checkpoint behind the stand-in, one generation at a time (vLLM would batch).

    `path`: another checkpoint instead, e.g. a DiffusionGemma-it-style one with a chat template and no
    FIM tokens (tests/chat_checkpoint.py), for the backend's `chat` layout."""

    def __init__(self, path: str | None = None) -> None:
        from diffgem_model.engine import Engine

        self.engine = Engine.load(path, device="cpu", prompt_cache_mb=64)
        self.tokenizer = self.engine.tokenizer
        self.canvas_length = self.engine.canvas_length
        self.vocab_size = self.engine.model.config.text_config.vocab_size
        self.eos_id = self.engine.eos_ids[0]
        self.max_model_len = int(self.tokenizer.model_max_length)
        self.lock = threading.Lock()

    def tokenize(self, text: str, add_special_tokens: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens).input_ids)

    def apply_chat_template(
        self, messages: Any, add_generation_prompt: bool, kwargs: dict[str, Any]
    ) -> list[int]:
        """What vLLM's /tokenize does with `messages`: the checkpoint's own chat template, rendered
        and tokenised (vllm/entrypoints/serve/tokenize/serving.py)."""
        encoded: Any = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt, tokenize=True, **kwargs
        )
        if not isinstance(encoded, list):  # transformers 5 returns a BatchEncoding
            encoded = encoded["input_ids"]
        return [int(i) for i in encoded]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def canvases(
        self, prompt: list[int], *, max_tokens: int, seed: int, xargs: dict[str, Any]
    ) -> Iterator[tuple[list[int], bool]]:
        """Committed canvases until EOS or max_tokens: (kept ids, ended at EOS)."""
        import torch
        from diffgem_model.prompt_cache import crop_to
        from diffgem_model.sampler import SamplerSettings, denoise

        engine = self.engine
        width = xargs.get("diffusion_canvas_length") or self.canvas_length
        # vLLM reads the commit rule from the checkpoint's generation config (`sampler_config`), which the
        # embedded checkpoint lacks; the stand-in uses what diffgem-lsp's own defaults ask of the worker.
        settings = SamplerSettings(
            rule="confidence",
            confidence_threshold=0.9,
            max_steps=xargs.get("diffusion_max_steps") or 8,
            **engine.sampler_defaults(),
        )
        seed_canvas = xargs.get("diffusion_seed_canvas")
        # validate_xargs refuses pins without a seed canvas, as vLLM does.
        pinned = (
            {p: seed_canvas[p] for p in xargs.get("diffusion_pinned") or []} if seed_canvas else {}
        )
        generator = torch.Generator().manual_seed(seed)
        with self.lock, torch.no_grad():  # as Engine.generate runs: no autograd graph
            cache, _ = engine.prompt_cache.encode(prompt)
            encoded, produced = list(prompt), 0
            try:
                while produced < max_tokens:
                    first = produced == 0
                    result = denoise(
                        engine.model,
                        cache,
                        canvas_length=width,
                        settings=settings,
                        generator=generator,
                        initial_canvas=seed_canvas if first else None,
                        pinned=pinned if first else None,
                        eos_ids=engine.eos_ids,
                    )
                    kept, ended = result.canvas, False
                    for i, token in enumerate(result.canvas):
                        if token in engine.eos_ids:
                            kept, ended = result.canvas[:i], True
                            break
                    kept = kept[: max_tokens - produced]
                    produced += len(kept)
                    yield kept, ended
                    if ended or not kept:
                        return
                    engine.prompt_cache.append(cache, encoded, kept)
                    encoded += kept
            finally:
                if cache.get_seq_length() > len(prompt) and not crop_to(cache, len(prompt)):
                    engine.prompt_cache.clear()


def main() -> int:
    """`python -m tests.backends.vllm_standin`: serve on 127.0.0.1 in a process of its own (benchmarks)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = StandinServer(EmbeddedModel(), api_key=args.api_key)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0


def dead_port_url() -> str:
    """A loopback URL nothing listens on (a port bound, then closed): connections are refused, as
    they are by a vLLM server that is down."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def validate_xargs(xargs: Any, *, canvas_length: int, vocab_size: int) -> None:
    """The checks of vllm/utils/diffusion.py (validate_diffusion_sampling_params), message for message,
    after the OpenAI layer's own type check of `vllm_xargs` (str | int | float or lists of them)."""
    if xargs is None:
        return
    if not isinstance(xargs, dict) or not all(
        isinstance(v, (str, int, float))
        or (isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v))
        for v in xargs.values()
    ):
        raise ValidationError("vllm_xargs: values must be strings, numbers or lists of them")

    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ValidationError(message)

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    width = xargs.get("diffusion_canvas_length")
    if width is not None:
        check(
            is_int(width) and 0 < width <= canvas_length,
            "diffusion_canvas_length must be a positive integer no larger than the served canvas.",
        )
    expected = width or canvas_length
    seed = xargs.get("diffusion_seed_canvas")
    if seed is not None:
        check(
            isinstance(seed, list) and all(is_int(t) for t in seed),
            "diffusion_seed_canvas must be a list of token ids.",
        )
        check(
            all(0 <= t < vocab_size for t in seed),
            f"diffusion_seed_canvas ids must be in [0, {vocab_size}).",
        )
        check(
            len(seed) == expected,
            f"diffusion_seed_canvas must hold exactly {expected} ids, got {len(seed)}.",
        )
    pins = xargs.get("diffusion_pinned")
    if pins is not None:
        check(
            isinstance(pins, list) and all(is_int(p) for p in pins),
            "diffusion_pinned must be a list of canvas positions.",
        )
        check(seed is not None, "diffusion_pinned needs a diffusion_seed_canvas to hold.")
        check(
            all(0 <= p < expected for p in pins),
            "diffusion_pinned positions must lie inside the canvas.",
        )
    cap = xargs.get("diffusion_max_steps")
    if cap is not None:
        check(is_int(cap) and cap > 0, "diffusion_max_steps must be a positive integer.")


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, model: EmbeddedModel, api_key: str | None = None, handler: type | None = None
    ):
        super().__init__(("127.0.0.1", 0), handler or _Handler)
        self.model = model
        self.api_key = api_key
        self.faults = Faults()
        self.record = Record()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> StandinServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class UnixStandinServer(StandinServer):
    """The stand-in on a unix socket, as `vllm serve --uds PATH` listens."""

    address_family = socket.AF_UNIX

    def __init__(self, model: EmbeddedModel, path: str, api_key: str | None = None):
        self.path = path
        super().__init__(model, api_key, handler=_UnixHandler)

    def server_bind(self) -> None:  # HTTPServer's would read a (host, port) pair
        self.socket.bind(self.path)
        self.server_address = self.path

    @property
    def url(self) -> str:
        return f"unix:{self.path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked answers, as uvicorn serves them
    # uvicorn (asyncio) sends without Nagle's delay; without this, a small chunk after the headers waits
    # for the client's delayed ACK (~40 ms on Linux) and the overhead figures measure that instead.
    disable_nagle_algorithm = True
    server: StandinServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read Record instead
        return

    def setup(self) -> None:
        super().setup()
        self.server.record.connections += 1

    def parse_request(self) -> bool:
        self._t_request = time.perf_counter()  # the request line has just been read
        return super().parse_request()

    # -- plumbing ------------------------------------------------------------------------------
    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "BadRequestError") -> None:
        # vllm/entrypoints/serve/engine/protocol.py: ErrorResponse{error: ErrorInfo{message, type, param, code}}
        self._json(
            status, {"error": {"message": message, "type": kind, "param": None, "code": status}}
        )

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _authorised(self) -> bool:
        # vLLM's --api-key guards the /v1 routes only (its AuthenticationMiddleware skips other paths).
        key = self.server.api_key
        if key is None or not self.path.startswith("/v1"):
            return True
        if self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": "Unauthorized"})
        return False

    # -- routes --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path == "/v1/models":
            m = self.server.model
            card = {
                "id": SERVED_NAME,
                "object": "model",
                "created": int(time.time()),
                "owned_by": "vllm",
                "root": SERVED_NAME,
                "parent": None,
                "max_model_len": m.max_model_len,
            }
            self._json(200, {"object": "list", "data": [card]})
        elif self.path == "/health":
            self._json(200, {})
        elif self.path == "/standin/record":
            # Not a vLLM route: benchmarks read the time spent in the model per answer, to subtract it.
            r = self.server.record
            self._json(
                200,
                {
                    "model_ms": r.model_ms,
                    "server_ms": r.server_ms,
                    "completed": r.completed,
                    "aborted": r.aborted,
                    "connections": r.connections,
                },
            )
        else:
            self._error(404, f"no route {self.path}", "NotFoundError")

    def do_POST(self) -> None:
        if not self._authorised():
            return
        try:
            body = self._body()
        except ValueError:
            self._error(400, "request body is not JSON")
            return
        if not isinstance(body, dict):
            self._error(400, "request body must be an object")
            return
        self.server.record.bodies.append(body)
        if self.path == "/tokenize":
            self._tokenize(body)
        elif self.path == "/v1/completions":
            self._completions(body)
        else:
            self._error(404, "Not Found", "NotFoundError")

    def _tokenize(self, body: dict[str, Any]) -> None:
        m = self.server.model
        if "messages" in body:
            if not m.tokenizer.chat_template:  # the embedded tokenizer has none
                self._error(400, "this model has no chat template")
                return
            kwargs = body.get("chat_template_kwargs") or {}
            ids = m.apply_chat_template(
                body["messages"], bool(body.get("add_generation_prompt", True)), kwargs
            )
            self._json(200, {"count": len(ids), "max_model_len": m.max_model_len, "tokens": ids})
            return
        ids = m.tokenize(str(body.get("prompt", "")), bool(body.get("add_special_tokens", True)))
        self._json(200, {"count": len(ids), "max_model_len": m.max_model_len, "tokens": ids})

    def _completions(self, body: dict[str, Any]) -> None:
        m, faults = self.server.model, self.server.faults
        if body.get("model") not in (None, SERVED_NAME):
            self._error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
            return
        if body.get("suffix") is not None:
            self._error(400, "suffix is not currently supported")
            return
        xargs = body.get("vllm_xargs")
        try:
            if not faults.ignore_xargs:
                validate_xargs(xargs, canvas_length=m.canvas_length, vocab_size=m.vocab_size)
            prompt = body.get("prompt")
            t_tokenize = time.perf_counter()
            if isinstance(prompt, str):
                ids = m.tokenize(prompt, bool(body.get("add_special_tokens", True)))
            elif isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
                ids = list(prompt)
            else:
                raise ValidationError("prompt must be a string or a list of token ids")
            max_tokens = body.get("max_tokens", 16)
            if len(ids) + max_tokens > m.max_model_len:
                raise ValidationError(
                    f"This model's maximum context length is {m.max_model_len} tokens."
                )
        except ValidationError as exc:
            self._error(400, str(exc))
            return
        # Tokenising counts as model time (the benchmark subtracts it): vLLM's tokeniser is its own.
        self._tokenize_ms = (time.perf_counter() - t_tokenize) * 1000
        xargs = {} if faults.ignore_xargs else (xargs or {})
        if body.get("stream"):
            self._stream(body, ids, max_tokens, xargs)
        else:
            t0 = time.perf_counter()
            parts = list(
                m.canvases(ids, max_tokens=max_tokens, seed=body.get("seed") or 0, xargs=xargs)
            )
            self.server.record.model_ms.append(
                self._tokenize_ms + (time.perf_counter() - t0) * 1000
            )
            out = [t for kept, _ in parts for t in kept]
            finish = "stop" if parts and parts[-1][1] else "length"
            choice = {"index": 0, "text": m.decode(out), "finish_reason": finish, "logprobs": None}
            self._json(200, self._envelope([choice], usage=self._usage(ids, out)))
            self.server.record.completed += 1

    def _envelope(self, choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": SERVED_NAME,
            "choices": choices,
            "usage": usage,
        }

    @staticmethod
    def _usage(prompt: list[int], out: list[int]) -> dict[str, int]:
        n = len(out)
        return {
            "prompt_tokens": len(prompt),
            "completion_tokens": n,
            "total_tokens": len(prompt) + n,
        }

    def _chunk(self, payload: str) -> None:
        data = f"data: {payload}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _client_gone(self) -> bool:
        ready, _, _ = select.select([self.connection], [], [], 0.05)
        return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""

    def _stream(self, body: dict[str, Any], ids: list[int], max_tokens: int, xargs: dict) -> None:
        m, faults, record = self.server.model, self.server.faults, self.server.record
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        deadline = time.monotonic() + faults.delay_s
        while faults.hang or time.monotonic() < deadline:
            if self._client_gone():
                record.aborted += 1
                self.close_connection = True
                return
        if faults.malformed:
            self._chunk('{"id": "cmpl-x", "choices": [{"text": "unterminated')
        out: list[int] = []
        finish = None
        canvases = m.canvases(ids, max_tokens=max_tokens, seed=body.get("seed") or 0, xargs=xargs)
        model_s = 0.0  # time inside the model only: writing the chunks is the HTTP side's
        try:
            for n in itertools.count():
                t0 = time.perf_counter()
                step = next(canvases, None)
                model_s += time.perf_counter() - t0
                if step is None:
                    break
                kept, ended = step
                if faults.disconnect_after is not None and n >= faults.disconnect_after:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                out += kept
                finish = "stop" if ended else ("length" if len(out) >= max_tokens else None)
                choice = {
                    "index": 0,
                    "text": m.decode(kept),
                    "logprobs": None,
                    "finish_reason": finish,
                }
                if body.get("return_token_ids"):
                    choice["token_ids"] = kept
                self._chunk(json.dumps(self._envelope([choice])))
            model_ms = self._tokenize_ms + model_s * 1000
            record.model_ms.append(model_ms)
            if (body.get("stream_options") or {}).get("include_usage"):
                self._chunk(json.dumps(self._envelope([], usage=self._usage(ids, out))))
            self._chunk("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            record.server_ms.append((time.perf_counter() - self._t_request) * 1000 - model_ms)
            record.completed += 1
        except (BrokenPipeError, ConnectionResetError):
            record.aborted += 1  # the client closed the request: vLLM aborts it the same way
            self.close_connection = True


class _UnixHandler(_Handler):
    disable_nagle_algorithm = False  # TCP_NODELAY does not apply to a unix socket

    def address_string(self) -> str:
        return "unix"  # client_address is an empty string on a unix socket


if __name__ == "__main__":
    raise SystemExit(main())
