"""The resident model worker: loads the engine once and serves generate/cancel/status over stdin/stdout.

Started by the LSP server as `python -m diffgem_model.worker`; speaks only `diffgem_protocol` and imports
nothing of the server package.
Generations run one at a time on the main thread; a reader thread takes cancels and status requests
meanwhile, so a cancel stops denoising at the next step boundary.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import resource
import sys
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO

import diffgem_protocol as P

if TYPE_CHECKING:  # torch is imported only once the hello is out (see `load`)
    from .engine import Engine

log = logging.getLogger("diffgem.worker")


def with_checkpoint_schedule(
    sent: P.SamplerSettings, defaults: dict[str, float]
) -> P.SamplerSettings:
    """The temperature schedule is the checkpoint's own (its generation_config), whatever was sent."""
    return replace(
        sent, t_max=defaults.get("t_max", sent.t_max), t_min=defaults.get("t_min", sent.t_min)
    )


class Worker:
    def __init__(self, out: BinaryIO, args: argparse.Namespace):
        self.out = out
        self.args = args
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self.state = "loading"
        self.requests: queue.Queue[P.GenerateRequest | P.PrefillRequest | None] = queue.Queue()
        self.cancelled: set[int] = set()
        self.current: int | None = None
        self.last: dict[str, Any] | None = (
            None  # figures of the last finished generation (benchmarks)
        )
        self.totals = {"generations": 0, "forwards": 0, "tokens": 0, "prefills": 0}
        # Where a request's time went before its engine call (benchmarks: bench/typing_replay.py):
        # id -> (arrival time, what the worker was running then: "generate", "prefill" or None).
        self._arrived: dict[int, tuple[float, str | None]] = {}
        self._running: str | None = None
        self.last_timing: dict[str, Any] | None = None
        self._write_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._write_lock:
            self.out.write(P.encode(message))
            self.out.flush()

    # -- reader thread -------------------------------------------------------------------------
    def read_requests(self, stream: BinaryIO) -> None:
        for line in stream:
            if not line.strip():
                continue
            try:
                message = P.decode(line)
                op = message.get("op")
                if op == P.OP_GENERATE:
                    req = P.GenerateRequest.from_message(message)
                    self._arrived[req.id] = (time.perf_counter(), self._running)
                    self.requests.put(req)
                elif op == P.OP_PREFILL:
                    self.requests.put(P.PrefillRequest.from_message(message))
                elif op == P.OP_CANCEL:
                    self.cancelled.add(int(message["id"]))
                elif op == P.OP_STATUS:
                    self.send(self.status())
                else:
                    raise P.ProtocolError(f"unknown op {op!r}")
            except (P.ProtocolError, TypeError, KeyError, ValueError) as exc:
                # stderr reaches the server's log at debug level: the traceback costs nothing else.
                log.warning("bad request: %s", exc, exc_info=True)
                self.send(P.event(P.EV_ERROR, id=None, message=f"bad request: {exc}"))
        # stdin closed: the server is gone (exit, crash, SIGKILL). Leave now, even mid-generation:
        # nothing here is worth finishing, and a worker must never outlive its server.
        log.info("stdin closed: exiting")
        os._exit(0)

    def status(self) -> dict[str, Any]:
        cache = self.engine.prompt_cache if self.engine is not None else None
        return P.event(
            P.EV_STATUS,
            state=self.state,
            pid=os.getpid(),
            model=self.engine.description if self.engine is not None else None,
            layout=self.engine.layout if self.engine is not None else None,
            error=self.load_error,
            busy=self.current,
            cache_bytes=cache.nbytes if cache else 0,
            **self._memory_status(),
            cache_hits=cache.hits if cache else 0,
            cache_lookups=cache.lookups if cache else 0,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            last=self.last,
            last_timing=self.last_timing,
            totals=self.totals,
        )

    def _memory_status(self) -> dict[str, Any]:
        """Precision, what the load really quantised, and memory need vs the device (model/memory.py)."""
        if self.engine is None:
            return {}
        ckpt = self.engine.checkpoint
        return {
            "precision": ckpt.precision,
            "weights": ckpt.quant_report.describe() if ckpt.quant_report else None,
            "memory": ckpt.memory.as_dict() if ckpt.memory else None,
            "cache_budget_bytes": self.engine.cache_budget.bytes,
        }

    # -- main thread ---------------------------------------------------------------------------
    def load(self) -> None:
        t0 = time.perf_counter()
        try:
            # torch is imported here, after the hello went out; a broken install is reported.
            from .engine import Engine
            from .sanity import check_model

            engine = Engine.load(
                self.args.model or None,
                device=self.args.device,
                prompt_cache_mb=self.args.prompt_cache_mb,
                precision=self.args.precision,
            )
            # NaN weights load without an error, then fail (or fill garbage) on every request.
            check_model(engine.model, engine.tokenizer)
            self.engine = engine
        except Exception as exc:
            self.state, self.load_error = "error", str(exc)
            log.error("model load failed: %s", exc, exc_info=True)
            self.send(P.event(P.EV_LOAD_FAILED, message=str(exc)))
            return
        self.state = "ready"
        load_ms = (time.perf_counter() - t0) * 1000
        log.info("model ready: %s in %.0f ms", self.engine.description, load_ms)
        # `layout`: the server offers instruction rewrites only where the layout follows them (chat).
        self.send(
            P.event(
                P.EV_READY,
                model=self.engine.description,
                load_ms=load_ms,
                layout=self.engine.layout,
            )
        )

    def serve(self) -> None:
        """Run requests one at a time until next_request() says stop. The one request loop of the
        worker and the shared daemon (model/daemon.py), which differ only in where requests come from
        (`next_request`) and which are dropped unrun (`dropped`)."""
        while (req := self.next_request()) is not None:
            if self.dropped(req):
                self._arrived.pop(req.id, None)
                self.cancelled.discard(req.id)
                self.send(P.event(P.EV_CANCELLED, id=req.id))
                continue
            if self.engine is None:
                self.send(
                    P.event(P.EV_ERROR, id=req.id, message=f"model not loaded: {self.load_error}")
                )
                continue
            self.current = req.id
            kind = "prefill" if isinstance(req, P.PrefillRequest) else "generate"
            self._running = kind
            started = time.perf_counter()
            arrived, behind = self._arrived.pop(req.id, (started, None))
            try:
                answer = self.run(req)
                if kind == "generate":
                    self.last_timing = {
                        "id": req.id,
                        "queued_ms": (started - arrived) * 1000,
                        "behind": behind,  # what the worker was running when the request came
                        "run_ms": (time.perf_counter() - started) * 1000,
                        "answer": answer.get("event"),
                    }
                self.send(answer)
            except Exception as exc:  # one bad request must not take the worker (or daemon) down
                log.exception("generation %s failed", req.id)
                self.send(P.event(P.EV_ERROR, id=req.id, message=f"{type(exc).__name__}: {exc}"))
            finally:
                self.current = None
                self._running = None
                self.cancelled.discard(req.id)

    def next_request(self) -> P.GenerateRequest | P.PrefillRequest | None:
        """The next request to run; None ends serve()."""
        return self.requests.get()

    def dropped(self, req: P.GenerateRequest | P.PrefillRequest) -> bool:
        """Whether `req` was cancelled before it started (it is answered `cancelled`, unrun)."""
        return req.id in self.cancelled

    def waiting(self) -> bool:
        """Whether another request is queued behind the one being taken (the daemon has its own queue)."""
        return not self.requests.empty()

    def prefill(self, req: P.PrefillRequest) -> dict[str, Any]:
        """Warm the prompt cache (Engine.prefill). A prefill is only ever a head start: one with any
        request queued behind it is stale (that request is the real one, or a newer prefill) and is
        dropped unrun, so a generate never waits for a warm-up. A running one is a single encoder
        call, which the generate for the same prompt then reuses instead of repeating."""
        assert self.engine is not None
        if self.waiting():
            log.debug("prefill %s dropped: a newer request is waiting", req.id)
            return P.event(P.EV_CANCELLED, id=req.id)
        stats, encode_ms = self.engine.prefill(req.params)
        self.totals["prefills"] += 1
        log.debug(
            "prefill %s: %d prompt tokens encoded, %d reused, %.0f ms",
            req.id,
            stats.encoded_tokens,
            stats.reused_tokens,
            encode_ms,
        )
        return P.event(
            P.EV_PREFILLED,
            id=req.id,
            encoded_tokens=stats.encoded_tokens,
            reused_tokens=stats.reused_tokens,
            encode_ms=encode_ms,
        )

    def run(self, req: P.GenerateRequest | P.PrefillRequest) -> dict[str, Any]:
        from .sampler import DenoiseCancelled

        assert self.engine is not None
        if isinstance(req, P.PrefillRequest):
            return self.prefill(req)
        sampler = with_checkpoint_schedule(req.params.sampler, self.engine.sampler_defaults())
        params = replace(req.params, sampler=sampler)

        def draft(text: str) -> None:
            self.send(P.event(P.EV_DRAFT, id=req.id, text=text))

        try:
            if params.segments is not None:  # several holes in one canvas (model/multihole.py)
                from .multihole import generate_holes

                gen = generate_holes(
                    self.engine, params, should_stop=lambda: req.id in self.cancelled
                )
            elif params.candidates > 1:  # K fills: batched or sequential (model/candidates.py)
                from .candidates import generate_candidates

                gen = generate_candidates(
                    self.engine, params, should_stop=lambda: req.id in self.cancelled
                )
            else:
                gen = self.engine.generate(
                    params,
                    should_stop=lambda: req.id in self.cancelled,
                    on_draft=draft if req.stream else None,
                )
        except DenoiseCancelled:
            log.debug("generation %s cancelled between denoising steps", req.id)
            return P.event(P.EV_CANCELLED, id=req.id)
        self.last = gen.to_message()
        self.totals["generations"] += 1
        self.totals["forwards"] += gen.forwards
        self.totals["tokens"] += gen.tokens
        return P.event(P.EV_RESULT, id=req.id, result=self.last)


def exit_with_parent(parent: int) -> None:
    """Exit once the server is gone even if stdin stays open (a grandchild may hold the pipe)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options Worker.load and configure_threads read, for the worker's and the daemon's command
    lines alike; the server builds them with diffgem_lsp/backends/local.py `model_args`."""
    parser.add_argument(
        "--model", default="", help="checkpoint directory (default: embedded model)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="auto|fp32|bf16|fp8|int8|int4")
    parser.add_argument("--prompt-cache-mb", type=int, default=8192)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0 = fast_decoder.default_threads())",
    )


def configure_threads(threads: int) -> None:
    """torch's intra-op thread count for the calling thread (OpenMP's team size is per thread): on a
    small shared CPU a full-width team spinning at its barriers is many times slower than one core
    less (fast_decoder.default_threads)."""
    import torch

    from .fast_decoder import default_threads

    torch.set_num_threads(threads or default_threads())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diffgem-worker")
    add_model_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s"
    )
    # stdout is the protocol channel: anything else printed there (progress bars, warnings) would
    # corrupt it, so the real stdout is kept for messages and sys.stdout goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    worker = Worker(out, args)
    worker.send(P.event(P.EV_HELLO, pid=os.getpid(), protocol=P.PROTOCOL_VERSION))
    threading.Thread(target=worker.read_requests, args=(sys.stdin.buffer,), daemon=True).start()
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        configure_threads(args.threads)
    except Exception:  # a broken install: load() meets the same error and reports it (load_failed)
        log.exception("torch could not be imported")
    worker.load()
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
