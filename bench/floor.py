"""The decoder step against this machine's own floor: matmul throughput at the decoder's shapes, step
FLOPs, HF's forward vs the lean step side by side, and a torch.profiler breakdown of one warm request.

Boundary: drives the engine in process (no LSP, no worker); `bench/run.py` calls `measure()` and writes
the figures. Nothing here asserts. Times are medians of interleaved runs, as wall time and as this
thread's CPU time (with one intra-op thread the CPU time is what the step costs even when other
processes share the cores; with two it undercounts the second thread and is not reported).
"""

from __future__ import annotations

import contextlib
import statistics
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import diffgem_model  # noqa: F401  (before torch: OMP_WAIT_POLICY, as in the worker)
import torch
import torch.nn.functional as F
from diffgem_model.compat import with_cache
from diffgem_model.engine import Engine, GenerateParams
from diffgem_model.fast_decoder import (
    MATMUL_PRECISIONS,
    LeanDecoder,
    _onednn_linear,
    _to_bf16,
    cpu_has_native_bf16,
    default_threads,
    step_flops,
)
from diffgem_model.sampler import SamplerSettings, _decoder_inputs

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def _timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    return wall, cpu


def decoder_shapes(lean: LeanDecoder, canvas_length: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of every matmul in one decoder step, in order (self-conditioning, layers, head)."""
    C = canvas_length
    shapes = [(C, lean.embed.shape[0], lean.embed.shape[1])]
    shapes += [(C, w.shape[1], w.shape[0]) for w in (lean.sc_gate_up, lean.sc_down)]
    for layer in lean.layers:
        for w in (
            layer.qkv,
            layer.o,
            layer.gate_up,
            layer.down,
            layer.expert_gate_up,
            layer.expert_down,
        ):
            shapes.append((C, w.shape[1], w.shape[0]))
    shapes.append((C, lean.lm_head.shape[1], lean.lm_head.shape[0]))
    return shapes


def _linear(dtype: torch.dtype, packed: bool) -> Callable[[torch.Tensor], Callable]:
    """weight -> (x -> x @ weight.T) as the step multiplies: plain F.linear, or oneDNN-packed bf16
    weights (fast_decoder._to_bf16) where this build packs them."""

    def bind(weight: torch.Tensor) -> Callable:
        weight = weight.to(dtype)
        if packed:
            form = _to_bf16(weight)
            if form.is_mkldnn:
                return partial(_onednn_linear, packed=form)
        return partial(F.linear, weight=weight)

    return bind


def matmul_throughput(
    shapes: list[tuple[int, int, int]], dtype: torch.dtype, repeats: int = 20, packed: bool = False
) -> dict[str, float]:
    """GFLOP/s of the step's matmul shapes, each timed hot (its weight reused) and summed."""
    flops = wall_ms = cpu_ms = 0.0
    for M, K, N in sorted(set(shapes)):
        count = shapes.count((M, K, N))
        x = torch.randn(1, M, K, dtype=dtype)
        linear = _linear(dtype, packed)(torch.randn(N, K))
        for _ in range(3):
            linear(x)
        wall, cpu = _timed(partial(linear, x), repeats)
        flops += count * 2 * M * K * N
        wall_ms += count * statistics.median(wall)
        cpu_ms += count * statistics.median(cpu)
    return {
        "gflops_wall": flops / wall_ms / 1e6,
        "gflops_cpu": flops / cpu_ms / 1e6,
        "matmul_ms_wall": wall_ms,
        "matmul_ms_cpu": cpu_ms,
    }


def replay_matmuls(
    lean: LeanDecoder, canvas_length: int, dtype: torch.dtype, packed: bool = False
) -> Callable[[], None]:
    """The step's matmuls back to back with the model's own weights in `dtype` (streamed from memory,
    as in a step), bf16 ones packed as the step packs them if asked."""
    weights = [lean.embed.t().contiguous(), lean.sc_gate_up, lean.sc_down]
    for layer in lean.layers:
        weights += [
            layer.qkv,
            layer.o,
            layer.gate_up,
            layer.down,
            layer.expert_gate_up,
            layer.expert_down,
        ]
    weights.append(lean.lm_head)
    linears = [_linear(dtype, packed)(w) for w in weights]
    inputs = [torch.randn(1, canvas_length, w.shape[1], dtype=dtype) for w in weights]

    def run() -> None:
        for x, linear in zip(inputs, linears, strict=True):
            linear(x)

    return run


def typing_prompt(engine: Engine, file: str = "textwrap.py", row: int = 250) -> GenerateParams:
    """A cursor in the middle of a line of a ~500-line real file, with the LSP's default sampler."""
    text = (STDLIB / file).read_text()
    lines = text.split("\n")
    cut = sum(len(line) + 1 for line in lines[:row]) + len(lines[row]) // 2
    sampler = SamplerSettings(rule="confidence", max_steps=8, **engine.sampler_defaults())
    return GenerateParams(prefix=text[:cut], suffix=text[cut:], sampler=sampler)


def compare_steps(engine: Engine, params: GenerateParams, repeats: int) -> dict:
    """HF's forward vs the lean step in each matmul precision on the same cache and inputs,
    interleaved, plus the matmul replay (fp32 and bf16); `lean_ms_*` is the engine's own precision."""
    model = engine.model
    assert engine.lean is not None
    prompt = engine.build_prompt(params)
    cache, _ = engine.prompt_cache.encode(prompt.ids)
    C = engine.canvas_length
    canvas = torch.randint(0, model.config.text_config.vocab_size, (1, C))
    mask_mapping, positions = _decoder_inputs(model, cache, canvas)
    steps = {
        p: (engine.lean if engine.lean.matmul == p else LeanDecoder(model, matmul=p)).bind(cache, C)
        for p in MATMUL_PRECISIONS
    }
    self_conditioning = steps["fp32"](canvas) / 0.2

    def hf() -> None:
        with torch.no_grad():
            model(
                decoder_input_ids=canvas,
                self_conditioning_logits=self_conditioning,
                decoder_attention_mask=mask_mapping,
                decoder_position_ids=positions,
                **with_cache(cache),
            )

    fns: dict[str, Callable[[], object]] = {"hf": hf}
    for p, step in steps.items():
        fns[f"lean_{p}"] = partial(step, canvas, self_conditioning)
    fns["replay"] = replay_matmuls(engine.lean, C, torch.float32)
    fns["replay_bf16"] = replay_matmuls(engine.lean, C, torch.bfloat16, packed=True)
    runs: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = _timed(fn, 1)
            runs[name][0].extend(wall)
            runs[name][1].extend(cpu)
    flops = step_flops(model, cache.get_seq_length(), C)
    out: dict = {
        "prompt_tokens": cache.get_seq_length(),
        "step_gflop": flops / 1e9,
        "lean_matmul": engine.lean.matmul,
    }
    for name, (wall, cpu) in runs.items():
        out[f"{name}_ms_wall"] = statistics.median(wall)
        out[f"{name}_ms_cpu"] = statistics.median(cpu)
    for clock in ("wall", "cpu"):
        out[f"lean_ms_{clock}"] = out[f"lean_{engine.lean.matmul}_ms_{clock}"]
    return out


@contextlib.contextmanager
def _labelled(engine: Engine) -> Iterator[None]:
    """record_function labels around the prompt encoding and each decoder step (HF's or the lean one)."""
    from torch.profiler import record_function

    encode, model = engine.prompt_cache.encode, engine.model
    forward, build_prompt = model.forward, engine.build_prompt

    def build_prompt_labelled(params):
        with record_function("tokenise"):
            return build_prompt(params)

    def encode_labelled(ids):
        with record_function("encode"):
            return encode(ids)

    def forward_labelled(*args, **kwargs):
        with record_function("decoder_step"):
            return forward(*args, **kwargs)

    step_of = engine._step

    def step_labelled(*args):
        # The first step of a keystroke's request may be a FoldedStep (its new prompt tokens encoded
        # in the same pass, model/fold.py): labelled as a decoder step, encode included.
        step = step_of(*args)
        if step is None:
            return None

        def labelled(*step_args):
            with record_function("decoder_step"):
                return step(*step_args)

        return labelled

    engine.prompt_cache.encode = encode_labelled  # type: ignore[method-assign]
    engine.build_prompt = build_prompt_labelled  # type: ignore[method-assign]
    engine._step = step_labelled  # type: ignore[method-assign]
    model.forward = forward_labelled
    try:
        yield
    finally:
        del engine.prompt_cache.encode, engine.build_prompt, engine._step, model.forward


MATMUL = (
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::linear",
    "aten::matmul",
    "mkldnn::_linear_pointwise",  # packed bf16 weights (fast_decoder._to_bf16)
    "quantized::linear_dynamic",  # int8
)
# Operator namespaces the breakdown counts (each top-level op once, with its children).
OPS = ("aten::", "mkldnn::", "quantized::")
ATTENTION = ("scaled_dot_product", "flash_attention")
COPIES = ("aten::copy_", "aten::cat", "aten::index_copy", "aten::clone", "aten::contiguous")


def profile_request(engine: Engine, params: GenerateParams, out: Path, label: str) -> dict:
    """torch.profiler over one warm request: where its wall time goes, by kind of work."""
    from torch.profiler import ProfilerActivity, profile, record_function

    # Warm, as a keystroke finds it: the request before had one character less at the cursor (its
    # prompt is cached and its text tokenised), so this one re-encodes and re-tokenises what changed.
    engine.generate(replace(params, prefix=params.prefix[:-1]))
    with _labelled(engine), profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("request"):
            result = engine.generate(params)
    events = list(prof.events())
    labels = ("request", "tokenise", "encode", "decoder_step")
    regions = {e.name: 0.0 for e in events if e.name in labels}
    for e in events:
        if e.name in regions:
            regions[e.name] += e.cpu_time_total / 1000

    def region_of(e) -> str:
        parent = e.cpu_parent
        while parent is not None:
            if parent.name in ("tokenise", "encode", "decoder_step"):
                return parent.name
            parent = parent.cpu_parent
        return "sampler"

    kinds = {"matmul": 0.0, "attention": 0.0, "cache_copies": 0.0, "decoder_elementwise": 0.0}
    op_ms = {"tokenise": 0.0, "encode": 0.0, "decoder_step": 0.0, "sampler": 0.0}
    for e in events:
        if not e.name.startswith(OPS) or e.cpu_parent is None:
            continue
        if e.cpu_parent.name.startswith(OPS):
            continue  # count each top-level op once, with its children
        ms = e.cpu_time_total / 1000
        where = region_of(e)
        op_ms[where] += ms
        if where != "decoder_step":
            continue
        if e.name in MATMUL:
            kinds["matmul"] += ms
        elif any(a in e.name for a in ATTENTION):
            kinds["attention"] += ms
        elif e.name in COPIES:
            kinds["cache_copies"] += ms
        else:
            kinds["decoder_elementwise"] += ms
    request = regions.get("request", 0.0)
    decoder = regions.get("decoder_step", 0.0)
    encode = regions.get("encode", 0.0)
    tokenise = regions.get("tokenise", 0.0)
    breakdown = {
        "request_ms": request,
        "forwards": result.forwards,
        "tokenise_ms": tokenise,
        "encode_ms": encode,
        "decoder_ms": decoder,
        **{f"decoder_{k}_ms": v for k, v in kinds.items()},
        "decoder_python_overhead_ms": max(0.0, decoder - op_ms["decoder_step"]),
        # The rest: the sampler's per-step work, detokenising, the engine's Python.
        "sampler_and_rest_ms": max(0.0, request - decoder - encode - tokenise),
        "sampler_ops_ms": op_ms["sampler"],
    }
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
    lines = [f"# one warm request, {label} ({result.forwards} forwards, load {load_average()})", ""]
    lines += [f"{k}: {v:.2f}" for k, v in breakdown.items()] + ["", table]
    out.write_text("\n".join(lines) + "\n")
    return breakdown


def request_times(engine: Engine, params: GenerateParams, repeats: int) -> dict[str, float]:
    """A warm request end to end (engine.generate), lean vs HF, interleaved."""
    lean = engine.lean
    times: dict[str, list[float]] = {"lean": [], "hf": []}
    forwards = 0
    for _ in range(repeats):
        for name in ("lean", "hf"):
            engine.lean = lean if name == "lean" else None
            w = time.perf_counter()
            forwards = engine.generate(params).forwards
            times[name].append((time.perf_counter() - w) * 1000)
    engine.lean = lean
    return {
        "lean_request_ms_wall": statistics.median(times["lean"]),
        "hf_request_ms_wall": statistics.median(times["hf"]),
        "forwards": forwards,
    }


def measure(out_dir: Path, repeats: int = 9) -> dict:
    """All floor figures at 1 and 2 intra-op threads and the worker's default, into one dict."""
    worker_threads = default_threads()
    engine = Engine.load(device="cpu")
    assert engine.lean is not None, engine.lean_unsupported
    params = typing_prompt(engine)
    shapes = decoder_shapes(engine.lean, engine.canvas_length)
    results: dict = {
        "load_before": load_average(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": cpu_has_native_bf16(),
        "worker_threads": worker_threads,
        "threads": {},
    }
    for threads in sorted({1, 2, worker_threads}):
        torch.set_num_threads(threads)
        row: dict = {
            "fp32": matmul_throughput(shapes, torch.float32),
            "bf16": matmul_throughput(shapes, torch.bfloat16, repeats=5),
            "bf16_packed": matmul_throughput(shapes, torch.bfloat16, repeats=5, packed=True),
            **compare_steps(engine, params, repeats),
            **request_times(engine, params, 3),
        }
        gflop = row["step_gflop"]
        for clock in ("cpu", "wall"):
            peak = max(row[k][f"gflops_{clock}"] for k in ("fp32", "bf16", "bf16_packed"))
            row[f"floor_ms_{clock}"] = gflop / peak * 1000
        # One thread: CPU time is the step's own cost whatever else runs; more: only wall time counts.
        clock = "cpu" if threads == 1 else "wall"
        row["clock"] = clock
        row["floor_ms"] = row[f"floor_ms_{clock}"]
        row["hf_floor_ratio"] = row[f"hf_ms_{clock}"] / row["floor_ms"]
        row["lean_floor_ratio"] = row[f"lean_ms_{clock}"] / row["floor_ms"]
        row["lean_replay_ratio"] = row[f"lean_ms_{clock}"] / row[f"replay_ms_{clock}"]
        results["threads"][str(threads)] = row
    torch.set_num_threads(1)
    engine.lean, lean = None, engine.lean
    results["profile_hf"] = profile_request(
        engine, params, out_dir / "profile_warm_request_hf.txt", "HF forward"
    )
    engine.lean = lean
    results["profile_lean"] = profile_request(
        engine, params, out_dir / "profile_warm_request_lean.txt", "lean step"
    )
    torch.set_num_threads(worker_threads)
    results["load_after"] = load_average()
    return results


def profile_lean(out: Path) -> dict:
    """The lean step's warm-request profile alone, at 1 thread (as `measure` takes it), into `out`."""
    torch.set_num_threads(1)
    engine = Engine.load(device="cpu")
    return profile_request(engine, typing_prompt(engine), out, "lean step")


def markdown(r: dict) -> str:
    out = [
        f"CPU capability {r['cpu_capability']}, native bf16: {r['native_bf16']}; "
        f"load average {r['load_before']} → {r['load_after']}",
        "",
        "| threads | clock | fp32 GFLOP/s | bf16 plain / packed GFLOP/s | step GFLOP | floor (ms) | HF step (ms) "
        "| lean fp32 / bf16 / int8 (ms) | matmul replay fp32 / bf16 packed (ms) | HF / floor | lean / floor "
        "| warm request HF → lean (ms, wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for threads, row in r["threads"].items():
        c = row["clock"]
        lean = " / ".join(f"{row[f'lean_{p}_ms_{c}']:.1f}" for p in MATMUL_PRECISIONS)
        out.append(
            f"| {threads} | {c} | {row['fp32'][f'gflops_{c}']:.0f} | {row['bf16'][f'gflops_{c}']:.0f} / "
            f"{row.get('bf16_packed', {}).get(f'gflops_{c}', float('nan')):.0f} "
            f"| {row['step_gflop']:.2f} | {row['floor_ms']:.1f} | {row[f'hf_ms_{c}']:.1f} "
            f"| {lean} | {row[f'replay_ms_{c}']:.1f} / {row[f'replay_bf16_ms_{c}']:.1f} "
            f"| {row['hf_floor_ratio']:.1f}× | {row['lean_floor_ratio']:.1f}× ({row['lean_matmul']}) "
            f"| {row['hf_request_ms_wall']:.0f} → {row['lean_request_ms_wall']:.0f} "
            f"({row['forwards']} forwards) |"
        )
    out += [
        "",
        "| one warm request (profiled, 1 thread, ms) | HF forward | lean step |",
        "|---|---|---|",
    ]
    for key in r["profile_lean"]:
        out.append(f"| {key} | {r['profile_hf'][key]:.1f} | {r['profile_lean'][key]:.1f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # python bench/floor.py: the keystroke profile alone, beside measure()'s
    profile_lean(Path(__file__).resolve().parent / "profile_warm_request_lean_keystroke.txt")
