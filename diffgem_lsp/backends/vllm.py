"""The remote backend: DiffusionGemma served by vLLM (>= 0.24) over its OpenAI-compatible HTTP API.

Speaks HTTP only (aiohttp, asyncio); builds bodies with `vllm_prompts` and answers with the wire protocol's
`GenerationResult`, so features cannot tell it from the local worker. It never sees torch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from diffgem_protocol import GenerateParams, GenerationResult

from ..settings import Settings
from . import vllm_prompts as VP
from .base import BackendError, DraftCallback, StateCallback
from .endpoint import Endpoint, EndpointError, Secret, load_api_key, parse_endpoint

log = logging.getLogger("diffgem.vllm")

# After a failed connect, requests fail at once (or go to the fallback) for this long before the next
# probe: a down server must not add a connect timeout to every keystroke.
RETRY_AFTER_S = 5.0
MAX_ERROR_BODY = 64 << 10
# How long to wait for the end of an answer after its [DONE] event (see VllmBackend._drain).
DRAIN_S = 0.5
# Longest SSE line read: one event carries one whole canvas (text + token ids, a few KiB at 256 tokens).
MAX_EVENT_BYTES = 4 << 20

# What a transport failure looks like: aiohttp's own errors, and a response its parser refused (a line
# past MAX_EVENT_BYTES, a broken chunked encoding), which aiohttp raises outside ClientError.
TransportFailure = (aiohttp.ClientError, HttpProcessingError)


class RemoteError(BackendError):
    """The server could not answer (down, refused, timed out, or sent something unreadable)."""


class EndpointDown(RemoteError):
    """No connection: the fallback (if any) may answer instead."""


class AuthRejected(RemoteError):
    """HTTP 401/403: the key is missing or wrong. Not retried until the settings change."""


@dataclass(frozen=True)
class RemoteSettings:
    endpoint: str
    api_key_env: str = ""
    api_key_file: str = ""
    model: str = ""  # served model name; "" = the first one /v1/models lists
    timeout_s: float = 30.0  # deadline of one request, first byte to last canvas
    connect_timeout_s: float = 3.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteSettings:
        return cls(
            endpoint=settings.endpoint,
            api_key_env=settings.api_key_env,
            api_key_file=settings.api_key_file,
            model=settings.remote_model,
        )


class VllmBackend:
    kind = "vllm"
    supports_prefill = False  # base.Prefiller: vLLM keeps its own prefix cache; skipped

    def __init__(
        self,
        settings: Settings,
        on_state: StateCallback = lambda s, m: None,
        *,
        fallback: Any = None,  # a Backend; answers only while the server is down (remoteFallback)
        remote: RemoteSettings | None = None,  # overrides what `settings` say (tests, benchmarks)
    ):
        self.settings = settings
        self.remote = remote or RemoteSettings.from_settings(settings)
        self.on_state = on_state
        self.fallback = fallback
        self.state = "stopped"
        self.model = ""
        self.error: str | None = None
        self.capabilities: VP.Capabilities | None = None
        self.pid: int | None = None  # no local process: kept for status() callers that read it
        self._client: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}  # path -> absolute URL, parsed once
        self._endpoint: Endpoint | None = None
        self._key: Secret | None = None
        self._last_report: tuple[str, str] | None = None
        self._down_since: float | None = None
        self._sticky: str | None = None  # a settings or key problem: only new settings clear it
        self._connect_lock = asyncio.Lock()
        self._inflight = 0
        self.stats = {"requests": 0, "errors": 0, "fallbacks": 0}

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and probe. A failure is reported through on_state (the Backend contract), not raised:
        requests raise it, and retry the connection once RETRY_AFTER_S has passed."""
        try:
            await self._connect()
        except RemoteError as exc:
            log.warning("%s", exc)

    async def stop(self) -> None:
        if self.fallback is not None:
            await self.fallback.stop()
        client, self._client = self._client, None
        self.capabilities = None
        if client is not None:
            await client.close()
        self._report("stopped", "remote backend closed")

    async def restart(self, settings: Settings | None = None) -> None:
        if settings is not None:
            self.settings, self.remote = settings, RemoteSettings.from_settings(settings)
            if self.fallback is not None:
                self.fallback.settings = settings
        await self.stop()
        self._down_since = self._sticky = None
        self._last_report = None
        await self.start()

    async def wait_ready(self, timeout: float) -> None:
        await asyncio.wait_for(self._ensure_connected(), timeout)

    # -- requests ------------------------------------------------------------------------------
    async def generate(
        self, params: GenerateParams, on_draft: DraftCallback | None = None
    ) -> GenerationResult:
        """One fill. Cancelling the awaiting task closes the HTTP request, which vLLM takes as an abort."""
        try:
            caps = await self._ensure_connected()
        except EndpointDown:
            if self.fallback is None:
                raise
            self.stats["fallbacks"] += 1
            return await self.fallback.generate(params, on_draft=on_draft)
        self.stats["requests"] += 1
        self._inflight += 1
        try:
            # asyncio.timeout rather than wait_for: no second task per request (wait_for wraps the
            # coroutine in one on 3.11), and cancelling still closes the HTTP request.
            async with asyncio.timeout(self.remote.timeout_s):
                return await self._generate(params, caps)
        except TimeoutError as exc:
            self.stats["errors"] += 1
            raise RemoteError(
                f"{self._where()} did not finish within {self.remote.timeout_s:g} s"
            ) from exc
        except AuthRejected as exc:
            self.stats["errors"] += 1
            self._fail_sticky(str(exc))  # the key was revoked or rotated while connected
            raise
        except RemoteError:
            self.stats["errors"] += 1
            raise
        finally:
            self._inflight -= 1

    async def status(self, timeout: float = 5.0) -> dict[str, Any]:
        caps = self.capabilities
        return {
            "backend": self.kind,
            "state": self.state,
            "endpoint": self._where(),
            "model": self.model,
            "error": self.error,
            "busy": self._inflight or None,
            "capabilities": None
            if caps is None
            else {
                "layout": caps.layout,
                "canvas_length": caps.canvas_length,
                "max_model_len": caps.max_model_len,
                "seed_canvas": caps.seed_canvas,
                "pinning": caps.pinning,
                "drafts": caps.drafts,
            },
            "fallback": None if self.fallback is None else getattr(self.fallback, "kind", "local"),
            "totals": dict(self.stats),
        }

    # -- connection and capability probe -------------------------------------------------------
    def _where(self) -> str:
        return f"vLLM at {self._endpoint.display}" if self._endpoint else "vLLM"

    def _report(self, state: str, message: str) -> None:
        """State changes go out once: a down server does not repeat its message on every keystroke."""
        previous, self.state = self.state, state
        if state == previous == "error":
            return  # one message per outage, however often it is retried
        if (state, message) != self._last_report:
            self._last_report = (state, message)
            self.on_state(state, message)

    async def _ensure_connected(self) -> VP.Capabilities:
        if self.capabilities is not None:
            return self.capabilities
        if self._sticky is not None:
            raise RemoteError(self._sticky)
        if self._down_since is not None and time.monotonic() - self._down_since < RETRY_AFTER_S:
            raise EndpointDown(self.error or f"{self._where()} is unreachable")
        await self._connect()
        assert self.capabilities is not None
        return self.capabilities

    async def _connect(self) -> None:
        async with self._connect_lock:
            if self.capabilities is not None:
                return
            try:
                self._endpoint = parse_endpoint(self.remote.endpoint)
                self._key = load_api_key(self.remote.api_key_env, self.remote.api_key_file)
            except EndpointError as exc:
                self._fail_sticky(str(exc))
                raise RemoteError(str(exc)) from exc
            if self._client is None:
                self._client = self._make_client(self._endpoint, self._key)
                self._urls = {}
            if self.state != "error":  # a retry during an outage stays quiet
                self._report("loading", f"connecting to {self._where()}")
            try:
                caps = await self._probe()
            except AuthRejected as exc:
                self._fail_sticky(str(exc))
                raise
            except RemoteError as exc:
                # Down or broken (5xx, garbage): retried after RETRY_AFTER_S; the fallback answers meanwhile.
                self._mark_down(str(exc))
                raise EndpointDown(str(exc)) from exc
            self.capabilities, self.model, self.error, self._down_since = (
                caps,
                caps.model,
                None,
                None,
            )
            hidden = [] if caps.pinning else ["pinned EOS"]
            hidden += [] if caps.seed_canvas else ["seed canvases"]
            log.info(
                "connected to %s: %s, layout %s, canvas %s%s",
                self._where(),
                caps.model,
                caps.layout,
                caps.canvas_length,
                f" (not offered: {', '.join(hidden)})" if hidden else "",
            )
            self._report("ready", f"{caps.model} on {self._where()}")

    def _make_client(self, endpoint: Endpoint, key: Secret | None) -> aiohttp.ClientSession:
        """One session for the backend's life: its pool keeps the connection alive between keystrokes.

        aiohttp rather than httpx2: its C HTTP parser and leaner request path cost ~1.3 ms of CPU per
        streamed completion here against httpx2's ~2.8 ms, and it sends a request's headers and body
        in one write (one wake-up of the server, not two). bench/backends.py has the figures."""
        headers = {"Authorization": f"Bearer {key.reveal()}"} if key is not None else {}
        connector: aiohttp.BaseConnector
        if endpoint.uds:
            connector = aiohttp.UnixConnector(path=endpoint.uds)
        else:
            # TLS is verified against the system's trust store (aiohttp's default, ssl=True); aiohttp
            # sets TCP_NODELAY on every connection, so small bodies and SSE chunks are not held back
            # by Nagle's algorithm waiting for an ACK.
            connector = aiohttp.TCPConnector(ssl=True)
        return aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            # Proxies from the environment are not followed: code would leave through them unseen.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            # `connect` covers the pool, the TCP connect and the TLS handshake; `sock_read` is the
            # longest silence between two reads, as httpx's read timeout was.
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=self.remote.connect_timeout_s,
                sock_read=self.remote.timeout_s,
            ),
            read_bufsize=MAX_EVENT_BYTES // 2,  # aiohttp allows lines up to twice this
            raise_for_status=False,
        )

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            assert self._endpoint is not None
            url = self._urls[path] = URL(self._endpoint.base_url + path)
        return url

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One non-streaming call; transport failures become EndpointDown, HTTP errors RemoteError."""
        assert self._client is not None
        try:
            async with self._client.request(
                method, self._url(path), allow_redirects=False, **kwargs
            ) as response:
                status, content = response.status, await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise EndpointDown(f"{self._where()} is unreachable ({type(exc).__name__})") from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise EndpointDown(f"{self._where()} is unreachable (connect timeout)") from exc
        except TimeoutError as exc:  # aiohttp's read timeout (ServerTimeoutError) is one
            raise RemoteError(f"{self._where()} timed out on {path}") from exc
        except TransportFailure as exc:
            raise EndpointDown(f"{self._where()}: {type(exc).__name__} on {path}") from exc
        if status != 200:
            raise self._http_error(status, content, path)
        try:
            return json.loads(content)
        except ValueError as exc:
            raise RemoteError(f"{self._where()} sent malformed JSON on {path}") from exc

    def _http_error(self, status: int, content: bytes, path: str) -> RemoteError:
        if status in (401, 403):
            return AuthRejected(
                f"{self._where()} rejected the API key (HTTP {status}): check apiKeyEnv / apiKeyFile"
            )
        message = ""
        try:
            error = json.loads(content[:MAX_ERROR_BODY])
            message = str((error.get("error") or {}).get("message") or error.get("message") or "")
        except (ValueError, AttributeError):
            message = content[:200].decode(errors="replace")
        return RemoteError(f"{self._where()} answered HTTP {status} on {path}: {message}".rstrip())

    async def _probe(self) -> VP.Capabilities:
        listing = await self._call("GET", "/v1/models")
        models = [m for m in (listing or {}).get("data") or [] if isinstance(m, dict)]
        names = [str(m.get("id")) for m in models]
        if not names:
            raise RemoteError(f"{self._where()} serves no model")
        model = self.remote.model or names[0]
        if model not in names:
            raise RemoteError(f"{self._where()} does not serve {model!r} (it serves {names})")
        info = models[names.index(model)]
        max_len = info.get("max_model_len") if isinstance(info.get("max_model_len"), int) else None
        tokenize, layout, eos = await self._probe_tokenizer(model)
        canvas, vocab = await self._probe_xargs(model)
        return VP.Capabilities(
            model=model,
            layout=layout,
            max_model_len=max_len,
            xargs=canvas is not None,
            canvas_length=canvas,
            vocab_size=vocab,
            eos_id=eos,
            tokenize=tokenize,
        )

    async def _probe_tokenizer(self, model: str) -> tuple[bool, str, int | None]:
        """Layout from the served tokenizer: FIM tokens present -> `fim`, else `chat`; and its EOS id."""
        try:
            fim = await self._tokenize(model, "<fim_middle>")
            eos = await self._tokenize(model, "<eos>")
        except RemoteError as exc:
            if isinstance(exc, (EndpointDown, AuthRejected)):
                raise
            log.info("%s: no /tokenize (%s): chat layout, no seed canvases", self._where(), exc)
            return False, "chat", None
        return True, "fim" if len(fim) == 1 else "chat", eos[0] if len(eos) == 1 else None

    async def _probe_xargs(self, model: str) -> tuple[int | None, int | None]:
        """Whether the server validates diffusion `vllm_xargs`, and its canvas and vocabulary sizes.

        vLLM checks them at admission, before any model time (vllm/utils/diffusion.py): an empty seed
        canvas is refused with "must hold exactly N ids", which names the served canvas; an id past the
        vocabulary with "must be in [0, V)". A server that accepts both is not diffusion-aware: its
        answer is one throwaway token, and seed canvases and pinning are hidden.
        """
        probes = {"canvas": ([], r"exactly (\d+) ids"), "vocab": ([2**31 - 1], r"\[0, (\d+)\)")}
        found: dict[str, int | None] = {}
        for name, (seed, pattern) in probes.items():
            body = {
                "model": model,
                "prompt": "\n",
                "max_tokens": 1,
                "vllm_xargs": {"diffusion_seed_canvas": seed},
            }
            try:
                await self._call("POST", "/v1/completions", json=body)
                found[name] = None
            except RemoteError as exc:
                if isinstance(exc, (EndpointDown, AuthRejected)):
                    raise
                match = re.search(pattern, str(exc))
                found[name] = int(match.group(1)) if match else None
            if found["canvas"] is None:
                return None, None
        return found["canvas"], found.get("vocab")

    async def _tokenize(self, model: str, text: str) -> list[int]:
        body = {"model": model, "prompt": text, "add_special_tokens": False}
        return list((await self._call("POST", "/tokenize", json=body)).get("tokens") or [])

    # -- one generation ------------------------------------------------------------------------
    async def _prompt(
        self, req: GenerateParams, caps: VP.Capabilities
    ) -> tuple[str | list[int], str]:
        prefix, suffix = VP.trim_context(req.prefix, req.suffix)
        if caps.layout == "fim":
            text, healed = VP.fim_text(prefix, suffix)
            return text, healed if req.old_text is None else ""
        body = {
            "model": caps.model,
            "messages": VP.chat_messages(prefix, suffix, req.old_text, req.instruction),
            "add_generation_prompt": True,
            "chat_template_kwargs": {"enable_thinking": False},
        }
        if not caps.tokenize:
            raise RemoteError(f"{self._where()} serves no /tokenize: the chat layout needs it")
        return list((await self._call("POST", "/tokenize", json=body)).get("tokens") or []), ""

    async def _generate(self, req: GenerateParams, caps: VP.Capabilities) -> GenerationResult:
        t0 = time.perf_counter()
        prompt, healed = await self._prompt(req, caps)
        seed_canvas = pinned = None
        if req.old_text is not None and caps.seed_canvas:
            seed_canvas = VP.edit_seed(await self._tokenize(caps.model, req.old_text), caps)
        elif req.old_text is None:
            seeded = VP.infill_seed(req.max_tokens, caps, req.seed)
            if seeded is not None:
                seed_canvas, pinned = seeded
        body = VP.completion_body(req, caps, prompt, seed_canvas=seed_canvas, pinned=pinned)
        token_ids: list[int] = []
        text, canvases, finish, usage = "", 0, None, {}
        async for chunk in self._stream(body):
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("text") or ""
                if delta:
                    text += delta
                    canvases += 1  # vLLM streams one whole committed canvas per chunk
                token_ids.extend(t for t in choice.get("token_ids") or [] if isinstance(t, int))
                finish = choice.get("finish_reason") or finish
        if healed and text.startswith(healed):
            text = text[len(healed) :]
        elapsed = (time.perf_counter() - t0) * 1000
        details = usage.get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        return GenerationResult(
            text=text,
            forwards=0,  # not reported by the server
            token_ids=token_ids,
            canvases=canvases,
            tokens_per_forward=0.0,
            mean_confidence=0.0,
            encoded_tokens=int(usage.get("prompt_tokens") or 0) - cached,
            reused_tokens=cached,
            encode_ms=0.0,
            denoise_ms=elapsed,
            finished=finish == "stop",
        )

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Server-sent events of one streaming completion, as parsed chunks.

        Leaving the `async with` before the answer's end (an error, or the task cancelled when a newer
        keystroke supersedes the request) closes the connection, which vLLM takes as an abort."""
        assert self._client is not None
        url = self._url("/v1/completions")
        try:
            async with self._client.post(url, json=body, allow_redirects=False) as response:
                if response.status != 200:
                    content = await response.content.read(MAX_ERROR_BODY)
                    raise self._http_error(response.status, content, "/v1/completions")
                stream = response.content
                while line := await stream.readline():
                    if not line.startswith(b"data:"):
                        continue  # blank separators, comments, keep-alives
                    data = line[len(b"data:") :].strip()
                    if data == b"[DONE]":
                        await self._drain(stream)
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError as exc:
                        raise RemoteError(
                            f"{self._where()} sent malformed JSON mid-answer"
                        ) from exc
                    if not isinstance(chunk, dict):
                        raise RemoteError(f"{self._where()} sent a chunk that is not an object")
                    if isinstance(chunk.get("error"), dict):
                        message = chunk["error"].get("message", "generation failed")
                        raise RemoteError(f"{self._where()}: {message}")
                    yield chunk
            raise RemoteError(f"{self._where()} ended the answer without [DONE]")
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            self._mark_down(f"{self._where()} is unreachable ({type(exc).__name__})")
            raise EndpointDown(self.error or "unreachable") from exc
        except TimeoutError as exc:  # aiohttp's read timeout (ServerTimeoutError) is one
            raise RemoteError(
                f"{self._where()} sent nothing for {self.remote.timeout_s:g} s"
            ) from exc
        except TransportFailure as exc:
            raise RemoteError(
                f"{self._where()} closed the connection mid-answer ({type(exc).__name__})"
            ) from exc

    @staticmethod
    async def _drain(stream: aiohttp.StreamReader) -> None:
        """Read the answer to its end after [DONE] (the chunked body's last, empty chunk follows at
        once), so the connection goes back to the pool. Leaving it unread closes it, and every
        request then paid a new TCP connect (bench/backends.py: 58 connects in 58 requests). A server
        that keeps the answer open after [DONE] gets DRAIN_S, then the connection is closed."""
        try:
            async with asyncio.timeout(DRAIN_S):
                while await stream.read(MAX_ERROR_BODY):
                    pass
        except (TimeoutError, *TransportFailure):
            pass  # the answer is whole; only the connection is lost

    def _mark_down(self, reason: str) -> None:
        self.capabilities, self.error, self._down_since = None, reason, time.monotonic()
        suffix = "; using the local model meanwhile" if self.fallback is not None else ""
        self._report("error", f"diffgem: {reason}{suffix}")

    def _fail_sticky(self, reason: str) -> None:
        self.capabilities, self.error, self._sticky, self._down_since = None, reason, reason, None
        self._report("error", f"diffgem: {reason}")
