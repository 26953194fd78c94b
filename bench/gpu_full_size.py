"""Full-size DiffusionGemma (random weights) through our engine on one GPU: load time, peak memory, ms per
256-token canvas and tokens/s at batch 1, in bf16 and FP8; and the fused sampling kernel's GB/s against HBM.

Boundary: a one-shot measurement script (nothing imports it). Results: bench/gpu_full_size.{json,md}.

    python bench/gpu_full_size.py                 # on a CUDA machine (~50 GB disk for the checkpoint)
    python bench/gpu_full_size.py --tiny          # CPU smoke run of every step at a tiny config

The config is model/real_config.py (25.2B parameters, checked against the published totals). Weights are
random, so the sampler never converges: every canvas runs a fixed number of denoising steps (16, as the
vLLM figures quoted beside ours: 145.7 ms per 256-token canvas, 1,288 tok/s FP8 at batch 1 on one H200).
The checkpoint is written to disk once and loaded per precision through the same `from_pretrained`
arguments as the engine (model/precision.py), so load time includes reading and quantising.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import DiffusionGemmaForBlockDiffusion  # noqa: E402

from model.memory import estimate  # noqa: E402
from model.precision import PrecisionError, load_kwargs, quant_report  # noqa: E402
from model.prompt_cache import PromptCache  # noqa: E402
from model.real_config import real_config  # noqa: E402
from model.sampler import SamplerSettings, denoise  # noqa: E402

HBM_GB_S = {"H200": 4800.0, "H100": 3350.0, "A100": 2039.0}  # vendor peak bandwidth (SXM parts)
VLLM = {"ms_per_canvas": 145.7, "fp8_tok_s_h200": 1288}
TINY = dict(
    vocab_size=4096,
    hidden_size=64,
    intermediate_size=128,
    moe_intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=32,
    global_head_dim=32,
    num_global_key_value_heads=1,
    num_experts=4,
    top_k_experts=2,
    sliding_window=64,
)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def write_checkpoint(config, path: Path, device: str) -> float:
    """Random weights in bf16 written as a real checkpoint; returns seconds."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = DiffusionGemmaForBlockDiffusion(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(path)
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return time.perf_counter() - t0


def run_precision(path: Path, precision: str, device: str, args) -> dict:
    result: dict = {"precision": precision}
    try:
        kwargs = load_kwargs(precision, device)
    except PrecisionError as exc:
        return {**result, "skipped": str(exc)}
    if device.startswith("cuda"):
        kwargs["device_map"] = device  # straight to the GPU, not through 50 GB of host memory
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    model = DiffusionGemmaForBlockDiffusion.from_pretrained(path, local_files_only=True, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    model.eval()
    _sync(device)
    result["load_s"] = round(time.perf_counter() - t0, 2)
    result["weights"] = quant_report(model, precision).describe()
    vocab = model.config.get_text_config().vocab_size
    canvas = model.config.canvas_length
    gen = torch.Generator(device=device).manual_seed(0)
    prompt = torch.randint(3, vocab - 3, (args.prompt_tokens,), generator=gen, device=device)
    cache_store = PromptCache(model, 1 << 40)
    settings = SamplerSettings(rule="entropy", max_steps=args.steps, stop_entropy=0.0)
    with torch.no_grad():
        t0 = time.perf_counter()
        cache, _ = cache_store.encode(prompt.tolist())
        _sync(device)
        result["encode_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        denoise(
            model,
            cache,
            canvas_length=canvas,
            settings=SamplerSettings(max_steps=2, stop_entropy=0.0),
            generator=gen,
        )  # warm-up
        times = []
        for _ in range(args.canvases):
            _sync(device)
            t0 = time.perf_counter()
            out = denoise(model, cache, canvas_length=canvas, settings=settings, generator=gen)
            _sync(device)
            times.append((time.perf_counter() - t0) * 1000)
            assert out.forwards == args.steps  # fixed steps: random weights never stop early
    ms = statistics.median(times)
    result.update(
        canvas=canvas,
        steps=args.steps,
        prompt_tokens=args.prompt_tokens,
        ms_per_canvas=round(ms, 1),
        ms_per_step=round(ms / args.steps, 2),
        tokens_per_s=round(canvas / (ms / 1000), 1),
    )
    if device.startswith("cuda"):
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    del model, cache, cache_store
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def kernel_bandwidth(device: str) -> dict:
    """The fused sampling kernel on the real [256 x 262,144] logits, against the GPU's HBM peak."""
    if not device.startswith("cuda"):
        return {"skipped": "no CUDA device (the fused kernel is Triton on CUDA)"}
    from kernels import bench_sampling as B

    name = torch.cuda.get_device_name()
    peak = next((v for k, v in HBM_GB_S.items() if k in name), None)
    out: dict = {"device": name, "hbm_peak_GB_s": peak, "cases": []}
    deadline = time.perf_counter() + 60
    for rows, vocab, dtype, softcap in B.CASES[:2]:
        case = B.run_case(rows, vocab, dtype, softcap, deadline, sweep=dtype == torch.bfloat16)
        best = max(
            (t for t in case["timings"] if "GB_s" in t and "kernel" in t["impl"]),
            key=lambda t: t["GB_s"],
            default=None,
        )
        if best and peak:
            case["best_kernel_share_of_hbm"] = round(best["GB_s"] / peak, 3)
        out["cases"].append(case)
    return out


def markdown(r: dict) -> str:
    lines = [
        f"# Full-size DiffusionGemma (random weights) through the engine — {r['device']}",
        "",
        f"Command: `{r['command']}`; config model/real_config.py ({r['params_b']:.1f}B parameters); "
        f"prompt {r['precisions'][0].get('prompt_tokens', '?')} tokens; {r['steps']} fixed denoising steps "
        "per 256-token canvas; median of the canvases after a warm-up.",
        "",
        "| precision | load s | peak GiB | encode ms | ms / canvas | ms / step | tok/s | weights |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in r["precisions"]:
        if "skipped" in p:
            lines.append(f"| {p['precision']} | skipped: {p['skipped']} | | | | | | |")
            continue
        lines.append(
            f"| {p['precision']} | {p['load_s']} | {p.get('peak_allocated_gib', '–')} | {p['encode_ms']} | "
            f"{p['ms_per_canvas']} | {p['ms_per_step']} | {p['tokens_per_s']} | {p['weights']} |"
        )
    lines += [
        "",
        f"vLLM's published figures: {VLLM['ms_per_canvas']} ms per 256-token canvas; "
        f"{VLLM['fp8_tok_s_h200']} tok/s FP8 batch 1 on one H200.",
        "",
    ]
    k = r["kernel"]
    if "skipped" in k:
        lines.append(f"Fused sampling kernel: skipped ({k['skipped']}).")
    else:
        for case in k["cases"]:
            kernels = [t for t in case["timings"] if "GB_s" in t and "kernel" in t["impl"]]
            best = max(kernels, key=lambda t: t["GB_s"], default=None)
            if best:
                lines.append(
                    f"- fused kernel {case['canvas']}×{case['vocab']} {case['dtype']}: best {best['impl']} "
                    f"{best['ms']} ms = {best['GB_s']} GB/s, {case.get('best_kernel_share_of_hbm', '?')} of "
                    f"the {k['hbm_peak_GB_s']} GB/s HBM peak"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tiny", action="store_true", help="tiny config on CPU: checks every step runs"
    )
    ap.add_argument("--precisions", default="bf16,fp8")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--canvases", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=1024)
    ap.add_argument(
        "--workdir", default=None, help="where the checkpoint is written (default: a temp dir)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if args.tiny:
        args.prompt_tokens = min(args.prompt_tokens, 200)
        args.steps, args.canvases = min(args.steps, 3), min(args.canvases, 2)
    config = real_config(**(TINY if args.tiny else {}))
    precisions = args.precisions.split(",") if not args.tiny else ["fp32", "bf16", "fp8"]
    planned = {p: estimate(config, p, device).as_dict() for p in precisions}
    params = sum(
        int(v) for v in __import__("model.memory", fromlist=["x"]).parameter_groups(config).values()
    )
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="diffgem-full-"))
    ckpt = workdir / "ckpt"
    result: dict = {
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({platform.processor() or platform.machine()})",
        "tiny": args.tiny,
        "command": "python bench/gpu_full_size.py" + (" --tiny" if args.tiny else ""),
        "params_b": params / 1e9,
        "steps": args.steps,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "memory_estimates": planned,
    }
    try:
        result["write_checkpoint_s"] = round(write_checkpoint(config, ckpt, device), 1)
        result["precisions"] = []
        for precision in precisions:
            try:
                result["precisions"].append(run_precision(ckpt, precision, device, args))
            except Exception as exc:  # one precision failing must not lose the other's figures
                gc.collect()
                if device == "cuda":
                    torch.cuda.empty_cache()
                error = f"{type(exc).__name__}: {exc}"[:300]
                result["precisions"].append({"precision": precision, "skipped": error})
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result["kernel"] = kernel_bandwidth(device)
    stem = "gpu_full_size_tiny" if args.tiny else "gpu_full_size"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
