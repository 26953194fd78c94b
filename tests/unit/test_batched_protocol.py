"""The wire's batched-candidates and multi-hole requests: validation, round trips, and a real worker
(the embedded checkpoint) answering K candidates from one batched denoise and every hole of a unit."""

from __future__ import annotations

import pytest
import torch

import diffgem_protocol as P

from .test_protocol import run_worker

SAMPLER = P.SamplerSettings(rule="confidence", max_steps=8)


def test_batched_and_multihole_requests_round_trip():
    for params in (
        P.GenerateParams(prefix="a", suffix="b", candidates=4, sampler=SAMPLER),
        P.GenerateParams(prefix="a", suffix="b", segments=("\n    x = 1\n",), hole_tokens=(8, 9)),
    ):
        request = P.GenerateRequest(id=3, params=params)
        assert P.GenerateRequest.from_message(P.decode(P.encode(request.to_message()))) == request


def test_result_candidates_and_fills_round_trip():
    base = dict(
        text="x",
        token_ids=[1],
        forwards=2,
        canvases=1,
        tokens_per_forward=1.0,
        mean_confidence=0.5,
        encoded_tokens=3,
        reused_tokens=0,
        encode_ms=1.0,
        denoise_ms=2.0,
        finished=True,
    )
    result = P.GenerationResult(
        **base,  # type: ignore[arg-type]
        candidates=[P.Candidate("x", [1], -0.1, True), P.Candidate("y", [2, 3], -0.7, False)],
        fills=["x", ""],
    )
    message = P.decode(P.encode(P.event(P.EV_RESULT, id=1, result=result.to_message())))
    assert P.GenerationResult.from_message(message["result"]) == result
    # A result without them (a remote backend, an older worker) reads as None, not as an error.
    assert P.GenerationResult.from_message(base).candidates is None


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"candidates": 0}, "candidates must be 1..8"),
        ({"candidates": 9}, "candidates must be 1..8"),
        ({"segments": ("x",)}, "come together"),
        ({"segments": ("x",), "hole_tokens": (4,)}, "one more hole than segments"),
        ({"segments": (), "hole_tokens": (0,)}, "at least 1 token"),
        ({"segments": ("x",), "hole_tokens": (4, 4), "candidates": 2}, "neither candidates"),
    ],
)
def test_inconsistent_requests_are_refused_with_the_reason(fields, says):
    with pytest.raises(ValueError, match=says):
        P.GenerateParams(prefix="a", suffix="b", **fields)


def test_segments_must_be_a_list_of_strings_on_the_wire():
    message = P.GenerateRequest(id=1, params=P.GenerateParams(prefix="a", suffix="b")).to_message()
    message["params"] |= {"segments": "oops", "hole_tokens": [1, 2]}
    with pytest.raises(ValueError, match="segments must be a list of str"):
        P.GenerateRequest.from_message(message)


def _request(id_: int, params: P.GenerateParams) -> bytes:
    return P.encode(P.GenerateRequest(id=id_, params=params).to_message())


def test_a_real_worker_answers_batched_candidates_and_every_hole():
    greet = ("def greet(name):\n    message = ", "\n    return message\n")
    holes = P.GenerateParams(
        prefix="def area(width, height):\n    ",
        suffix="\n    return result\n",
        segments=("\n    result = result * 2\n    ",),
        hole_tokens=(16, 16),
        sampler=SAMPLER,
    )
    too_big = P.GenerateParams(
        prefix="def f():\n    ",
        suffix="\n",
        segments=("\n    " + "x = 1 + 2 + 3 + 4\n    " * 8,),
        hole_tokens=(16, 16),
        sampler=SAMPLER,
    )
    lines = [
        _request(1, P.GenerateParams(*greet, candidates=4, max_tokens=48, sampler=SAMPLER)),
        _request(2, holes),
        _request(3, too_big),
        _request(4, P.GenerateParams(*greet, max_tokens=48, sampler=SAMPLER)),
    ]
    code, events = run_worker("", lines, answers=4)
    answers = {e["id"]: e for e in events if e["event"] in (P.EV_RESULT, P.EV_ERROR)}
    assert code == 0 and all(a["event"] == P.EV_RESULT for a in answers.values()), answers

    batched = P.GenerationResult.from_message(answers[1]["result"])
    assert batched.candidates is not None and len(batched.candidates) == 4
    texts = [c.text for c in batched.candidates]
    # The fixture exercises the path: the embedded model fills this hole, differently per row.
    assert all(texts) and len(set(texts)) >= 2, texts
    assert batched.text == texts[0] and batched.canvases == 1
    assert all(c.mean_logprob <= 0 for c in batched.candidates)
    single = P.GenerationResult.from_message(answers[4]["result"])
    assert single.candidates is None and single.fills is None

    joint = P.GenerationResult.from_message(answers[2]["result"])
    assert joint.fills is not None and len(joint.fills) == 2
    assert joint.text == "".join(joint.fills) and joint.forwards >= 1
    assert any(joint.fills), joint.fills  # the model wrote something into the holes

    refused = P.GenerationResult.from_message(answers[3]["result"])
    assert refused.fills is None and refused.forwards == 0 and "positions per hole" in refused.text


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    from diffgem_model.engine import Engine

    return Engine.load(tiny_checkpoint, device="cpu")


def test_batched_entropy_rule_keeps_pins_and_stops_on_cancel(engine):
    from diffgem_model.candidates import denoise_batch
    from diffgem_model.sampler import DenoiseCancelled

    prompt = engine.build_prompt(P.GenerateParams(prefix="x = (", suffix=")\n"))
    cache, _ = engine.prompt_cache.encode(prompt.ids)
    settings = P.SamplerSettings(rule="entropy", max_steps=4, stop_entropy=0.0)
    eos = engine.eos_ids[0]
    canvas, logprob, forwards = denoise_batch(
        engine.model,
        cache,
        rows=3,
        canvas_length=engine.canvas_length,
        settings=settings,
        generator=torch.Generator().manual_seed(0),
        eos_id=eos,
        lengths=[2, None, 5],
        pinned={0: 7},
    )
    assert canvas.shape == (3, engine.canvas_length) and forwards == 4  # no early stop asked
    assert canvas[:, 0].tolist() == [7, 7, 7]  # a pinned token in every row
    assert (canvas[0, 2:] == eos).all() and (canvas[2, 5:] == eos).all()  # per-row lengths
    assert bool((logprob <= 0).all())
    with pytest.raises(DenoiseCancelled):
        denoise_batch(
            engine.model,
            cache,
            rows=2,
            canvas_length=engine.canvas_length,
            settings=settings,
            generator=torch.Generator().manual_seed(0),
            eos_id=eos,
            should_stop=lambda: True,
        )


def test_cpu_candidates_are_sequential_passes_and_either_path_can_be_forced(engine, monkeypatch):
    from diffgem_model import candidates as K
    from diffgem_model.sampler import DenoiseCancelled

    params = P.GenerateParams(prefix="x = (", suffix=")\n", candidates=3, sampler=SAMPLER, seed=5)
    monkeypatch.delenv("DIFFGEM_BATCHED_CANDIDATES", raising=False)
    assert engine.model.device.type == "cpu" and not K.batches_rows(engine)
    seeds: list[int] = []
    denoise = K.denoise

    def recording(*args, **kwargs):
        seeds.append(kwargs["generator"].initial_seed())
        return denoise(*args, **kwargs)

    monkeypatch.setattr(K, "denoise", recording)
    lookups = engine.prompt_cache.lookups
    sequential = K.generate_candidates(engine, params)
    assert seeds == [
        5,
        6,
        7,
    ]  # the sequential path ran: one denoise per candidate, seeds seed..+K-1
    assert engine.prompt_cache.lookups == lookups + 1  # against one encode of the prompt
    assert sequential.candidates is not None and len(sequential.candidates) == 3
    # Row r is Engine.generate's first canvas with seed + r.
    one_canvas = P.GenerateParams(
        prefix="x = (", suffix=")\n", sampler=SAMPLER, seed=6, max_tokens=engine.canvas_length
    )
    assert sequential.candidates[1].text == engine.generate(one_canvas).text
    assert sequential.text == sequential.candidates[0].text
    assert all(c.mean_logprob <= 0 for c in sequential.candidates)
    assert sequential.forwards >= 3 and sequential.canvases == 1
    with pytest.raises(DenoiseCancelled):
        K.generate_candidates(engine, params, should_stop=lambda: True)

    monkeypatch.setenv("DIFFGEM_BATCHED_CANDIDATES", "1")
    assert K.batches_rows(engine)
    seeds.clear()
    batched = K.generate_candidates(engine, params)
    assert seeds == [] and batched.candidates is not None and len(batched.candidates) == 3
