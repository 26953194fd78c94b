"""Training-throughput benchmark (`make train-bench`): tokens/s and MFU of the training step for the shipped shape.

Boundary: times loss_step + backward + AdamW on real FIM batches (or same-shaped random ones with --synthetic)
and the data path on its own; prints one JSON line. It trains nothing that is kept.
MFU = model FLOPs per second / peak: H100/H200 bf16 dense 989 TFLOP/s (NVIDIA's datasheet), else the peak of
a bf16 matmul measured on this device (a CPU has no datasheet figure worth quoting).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

from .objective import autocast, loss_step
from .train import DATA, EMBEDDED, make_sampler

PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


def measured_peak(device: str, n: int = 2048, reps: int = 5) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_flops(model, batch: dict, encoder_positions: int, self_conditioning: float) -> float:
    """Matmul FLOPs of one training step (forward x3 for forward + backward; the no-grad pass x1)."""
    cfg = model.config.text_config
    d, layers, vocab = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    body = sum(
        p.numel()
        for n, p in model.named_parameters()
        if "embed" not in n and "lm_head" not in n and "vision" not in n
    )
    attn_dim = cfg.num_attention_heads * cfg.head_dim
    prompt = float(batch["prompt_len"].sum())
    rows, canvas = batch["canvas"].shape
    mean_len = prompt / rows
    enc = (
        6 * body * prompt
        + 3 * 4 * layers * attn_dim * prompt * mean_len / 2
        + 6 * d * vocab * rows * encoder_positions
    )
    dec_pass = (
        2 * body * rows * canvas
        + 4 * layers * attn_dim * rows * canvas * (mean_len + canvas)
        + 2 * d * vocab * rows * canvas
    )
    return enc + 3 * dec_pass + self_conditioning * dec_pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=EMBEDDED)
    p.add_argument("--batch-size", type=int, default=0, help="default: 512 on CUDA, 8 on CPU")
    p.add_argument(
        "--steps", type=int, default=0, help="timed steps (default: 20 on CUDA, 3 on CPU)"
    )
    p.add_argument(
        "--warmup", type=int, default=0, help="untimed steps (default: 5 on CUDA, 1 on CPU)"
    )
    p.add_argument("--compile", action="store_true")
    p.add_argument("--noise", default="uniform", choices=("uniform", "masked"))
    p.add_argument("--encoder-positions", type=int, default=256)
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="random batches of the same shape (no corpus needed)",
    )
    p.add_argument(
        "--split", default="train_00", help="pre-tokenised shard (else synthetic batches)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    cuda = args.device == "cuda"
    bs = args.batch_size or (512 if cuda else 8)
    steps, warm = args.steps or (20 if cuda else 3), args.warmup or (5 if cuda else 1)
    if not cuda:
        torch.set_num_threads(max(1, torch.get_num_threads()))
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
    model = (
        DiffusionGemmaForBlockDiffusion.from_pretrained(
            args.checkpoint, dtype=torch.float32, attn_implementation="sdpa"
        )
        .to(args.device)
        .train()
    )
    canvas = model.config.canvas_length
    vocab = model.config.text_config.vocab_size
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    if args.compile:
        model.model.encoder.compile(dynamic=True)
        model.model.decoder.compile(dynamic=True)
    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    if args.synthetic or not (DATA / f"{args.split}_tokens.npy").exists():
        rng = np.random.default_rng(0)
        tokens = rng.integers(10, vocab, 2_000_000).astype(np.uint16)
        tokens[rng.random(tokens.shape) < 0.08] = tok("\n", add_special_tokens=False).input_ids[0]
        source: object = (tokens, np.arange(0, len(tokens) + 1, 4000))
    else:
        source = args.split
    sampler = make_sampler(source, args.checkpoint, canvas, 0)
    t = time.perf_counter()
    batches = [sampler.batch(bs) for _ in range(2)]
    data_rate = sum(int(b.prompt_len.sum()) + b.canvas.size for b in batches) / (
        time.perf_counter() - t
    )
    step_args = SimpleNamespace(
        encoder_positions=args.encoder_positions,
        encoder_weight=1.0,
        self_conditioning=0.5,
        noise=args.noise,
    )
    tokens_done = flops = 0.0
    for i in range(warm + steps):
        nb = batches[i % 2]
        b = {
            k: torch.as_tensor(getattr(nb, k)).to(args.device, non_blocking=True)
            for k in nb.__dataclass_fields__
        }
        if i == warm:
            sync(args.device)
            t0 = time.perf_counter()
        with autocast(args.device):
            loss, _ = loss_step(model, b, step_args, vocab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warm:
            tokens_done += int(b["prompt_len"].sum()) + b["canvas"].numel()
            flops += step_flops(model, b, args.encoder_positions, 0.5)
    sync(args.device)
    seconds = time.perf_counter() - t0
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = next((v for k, v in PEAKS.items() if k in name), None) or measured_peak(args.device)
    print(
        json.dumps(
            {
                "device": name,
                "threads": torch.get_num_threads(),
                "batch_size": bs,
                "compile": args.compile,
                "noise": args.noise,
                "timed_steps": steps,
                "tokens_per_s": round(tokens_done / seconds),
                "model_tflops_per_s": round(flops / seconds / 1e12, 4),
                "peak_tflops_per_s": round(peak / 1e12, 3),
                "mfu": round(flops / seconds / peak, 4),
                "data_tokens_per_s_one_worker": round(data_rate),
                "tokens_per_step": round(tokens_done / steps),
                "loss": round(float(loss.detach()), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
