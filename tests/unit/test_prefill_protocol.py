"""The `prefill` op: its wire form, and the worker warming the real engine's prompt cache with it.

A tiny random checkpoint (tests/tiny_model.py) runs the real engine and prompt cache on CPU; the worker
is driven through `Worker.run`, what its serve loop calls for every queued request.
"""

from __future__ import annotations

import argparse
import io
from dataclasses import asdict

import pytest
from diffgem_model.engine import Engine
from diffgem_model.worker import Worker

import diffgem_protocol as P
from diffgem_lsp.backends import prefiller
from diffgem_lsp.backends.local import LocalWorker
from diffgem_lsp.backends.vllm import VllmBackend
from diffgem_lsp.prefill import change_end, open_offsets
from diffgem_lsp.settings import Settings

PREFIX = "import os\n\n\ndef join_all(parts):\n    result = []\n    for part in parts:\n        result.append("
SUFFIX = ")\n    return os.sep.join(result)\n\n\nprint(join_all(['a', 'b']))\n"
PARAMS = P.GenerateParams(prefix=PREFIX, suffix=SUFFIX, max_tokens=8)


def test_prefill_request_round_trips_over_the_wire():
    sent = P.PrefillRequest(id=7, params=PARAMS)
    message = P.decode(P.encode(sent.to_message()))
    assert message["op"] == P.OP_PREFILL == "prefill"
    assert message["v"] == P.PROTOCOL_VERSION
    assert P.PrefillRequest.from_message(message) == sent
    # The same prompt fields a generate carries, so either side builds the same prompt from them.
    assert message["params"] == P.GenerateRequest(id=7, params=PARAMS).to_message()["params"]


def test_prefill_request_without_params_is_a_protocol_error():
    with pytest.raises(KeyError):
        P.PrefillRequest.from_message(P.request(P.OP_PREFILL, id=1))


def worker_with(engine: Engine) -> Worker:
    worker = Worker(io.BytesIO(), argparse.Namespace())
    worker.engine = engine
    worker.state = "ready"
    return worker


def test_worker_prefill_warms_the_cache_the_next_generate_reuses(tiny_checkpoint):
    worker = worker_with(Engine.load(tiny_checkpoint, device="cpu", prompt_cache_mb=64))
    prompt_len = len(worker.engine.build_prompt(PARAMS).ids)  # type: ignore[union-attr]
    answer = worker.run(P.PrefillRequest(id=1, params=PARAMS))
    assert answer["event"] == P.EV_PREFILLED and answer["id"] == 1
    assert answer["encoded_tokens"] == prompt_len and answer["reused_tokens"] == 0
    assert worker.totals["prefills"] == 1
    assert worker.engine.prompt_cache.lookups == 0  # type: ignore[union-attr]  # requests' figure
    result = worker.run(P.GenerateRequest(id=2, params=PARAMS))
    assert result["event"] == P.EV_RESULT
    # All of the prompt came from the prefill but the one token the cache always re-encodes.
    assert result["result"]["reused_tokens"] == prompt_len - 1
    assert result["result"]["encoded_tokens"] == 1


def test_cold_generate_reuses_nothing(tiny_checkpoint):
    worker = worker_with(Engine.load(tiny_checkpoint, device="cpu", prompt_cache_mb=64))
    result = worker.run(P.GenerateRequest(id=1, params=PARAMS))
    assert result["result"]["reused_tokens"] == 0


def test_stale_prefill_is_dropped_unrun(tiny_checkpoint):
    """A request queued behind a prefill makes it stale: the worker answers cancelled, encodes nothing."""
    worker = worker_with(Engine.load(tiny_checkpoint, device="cpu", prompt_cache_mb=64))
    worker.requests.put(P.GenerateRequest(id=2, params=PARAMS))
    answer = worker.run(P.PrefillRequest(id=1, params=PARAMS))
    assert answer == P.event(P.EV_CANCELLED, id=1)
    assert worker.totals["prefills"] == 0
    assert worker.engine.prompt_cache.nbytes == 0  # type: ignore[union-attr]  # nothing encoded


def test_prefill_with_the_cache_disabled_encodes_nothing(tiny_checkpoint):
    worker = worker_with(Engine.load(tiny_checkpoint, device="cpu", prompt_cache_mb=0))
    answer = worker.run(P.PrefillRequest(id=1, params=PARAMS))
    assert answer["event"] == P.EV_PREFILLED and answer["encoded_tokens"] == 0


def test_prefill_capability_per_backend():
    settings = Settings()
    assert prefiller(LocalWorker(settings)) is not None  # type: ignore[arg-type]
    assert VllmBackend.supports_prefill is False


def test_prefill_cursor_is_the_end_of_the_change():
    old = "def f():\n    return 1\n"
    typed = "def f():\n    return 12\n"
    assert typed[: change_end(old, typed)] == "def f():\n    return 12"
    repeated = "def f():\n    return 11\n"  # the typed key repeats the one before: still after it
    assert repeated[: change_end(old, repeated)] == "def f():\n    return 11"
    pasted = "def f():\n    x = 2\n    return 1\n"
    assert pasted[: change_end(old, pasted)] == "def f():\n    x = 2\n    "
    deleted = "def f():\n    return\n"
    assert deleted[: change_end(old, deleted)] == "def f():\n    return"
    # didOpen: the ends of the non-blank lines, bottom up.
    text = "a = 1\n\nb = 2\n\n"
    assert [text[:o] for o in open_offsets(text)] == ["a = 1\n\nb = 2", "a = 1"]
    assert asdict(PARAMS)["prefix"] == PREFIX
