"""Train the embedded DiffusionGemma on FIM examples: canvas denoising (uniform-state or masked) + encoder LM loss.

Boundary: the training loop, its schedule, checkpoints and log; examples come from examples.py, shapes from config.py.
Uniform-state (DiffusionGemma's published recipe): corruption level t ~ U(0.001, 1), corrupted canvas positions
re-drawn uniformly, cross-entropy over the canvas. Masked (absorbing, MDLM, arXiv:2406.07524): corrupted positions
become the mask id, loss on them weighted 1/t. Both: EOS padding after the first EOS down-weighted (the CPU
pilot's EOS collapse), pinned multi-hole code never noised, next-token loss on the encoder side through the tied
head, self-conditioning with probability 0.5. Warmup-stable-decay LR (arXiv:2404.06395) so short runs resume from
the stable phase; the best checkpoint by validation exact match is kept. CPU and CUDA (bf16 autocast).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

from .config import PRESETS, build_config
from .examples import FimSampler
from .objective import autocast, loss_step, mask_token_id, probe

DATA = Path(__file__).resolve().parent.parent / "data"
RUNS = Path(__file__).resolve().parent.parent / "runs"
EMBEDDED = Path(__file__).resolve().parent.parent / "embedded"
TRAINING_LOG = Path(__file__).resolve().parent / "training_log.jsonl"


class Batches(torch.utils.data.IterableDataset):
    """Endless FIM batches; each DataLoader worker gets its own seed."""

    def __init__(
        self,
        split: str,
        tokenizer_dir: Path,
        canvas_length: int,
        batch_size: int,
        seed: int,
        kinds=None,
    ):
        self.args = (split, tokenizer_dir, canvas_length, batch_size, seed, kinds)

    def __iter__(self):
        split, tokenizer_dir, canvas_length, batch_size, seed, kinds = self.args
        info = torch.utils.data.get_worker_info()
        sampler = make_sampler(
            split, tokenizer_dir, canvas_length, seed * 1000 + (info.id if info else 0), kinds
        )
        while True:
            b = sampler.batch(batch_size)
            yield {k: torch.from_numpy(np.asarray(getattr(b, k))) for k in b.__dataclass_fields__}


def make_sampler(
    split_or_arrays, tokenizer_dir: Path, canvas_length: int, seed: int, kinds: dict | None = None
) -> FimSampler:
    """FimSampler over a pre-tokenised split; `kinds` overrides its hole-kind mixture (e.g. single-line probes)."""
    if isinstance(split_or_arrays, str):
        tokens = np.asarray(np.load(DATA / f"{split_or_arrays}_tokens.npy", mmap_mode="r"))
        starts = np.load(DATA / f"{split_or_arrays}_starts.npy")
        weights_path = DATA / f"{split_or_arrays}_weights.npy"
        weights = np.load(weights_path) if weights_path.exists() else None
    else:
        tokens, starts = split_or_arrays
        weights = None
    sampler = FimSampler(
        tokens, starts, tokenizer_dir, canvas_length=canvas_length, seed=seed, file_weights=weights
    )
    if kinds:
        sampler.kinds = list(kinds)
        sampler.weights = np.array(list(kinds.values())) / sum(kinds.values())
    return sampler


def lr_at(
    progress: float, base: float, warmup: float = 0.05, schedule: str = "wsd", decay: float = 0.2
) -> float:
    """Warmup, then cosine to 0.1x, or warmup-stable-decay: flat, then linear to 0.1x over the last `decay`."""
    if progress < warmup:
        return base * progress / warmup
    if schedule == "wsd":
        if progress < 1 - decay:
            return base
        return base * (1 - 0.9 * min(1.0, (progress - (1 - decay)) / decay))
    return base * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))
    )


def plot_curve(log_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    rows = [r for r in rows if "loss" in r]
    if not rows:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    x = [r["tokens"] / 1e6 for r in rows]
    for key in ("loss", "dec", "enc"):
        ax[0].plot(x, [r[key] for r in rows], label=key)
    (
        ax[0].set_xlabel("tokens seen (M)"),
        ax[0].set_ylabel("loss"),
        ax[0].legend(),
        ax[0].set_yscale("log"),
    )
    probes = [r for r in rows if "probe_exact" in r]
    if probes:
        ax[1].plot(
            [r["tokens"] / 1e6 for r in probes],
            [r["probe_exact"] for r in probes],
            label="probe exact match",
        )
        ax[1].plot(
            [r["tokens"] / 1e6 for r in probes],
            [r["probe_empty"] for r in probes],
            label="empty predictions",
        )
        ax[1].set_xlabel("tokens seen (M)"), ax[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def save(model, opt, state: dict, run: Path, name: str = "ckpt") -> None:
    """Atomic save of weights (+ optimizer and progress when `opt` is given) as run/<name>."""
    tmp = run / f"{name}.tmp"
    model.save_pretrained(tmp)
    if opt is not None:
        torch.save({"opt": opt.state_dict(), **state}, tmp / "train_state.pt")
    final = run / name
    if final.exists():
        old = run / f"{name}.old"
        final.rename(old)
        tmp.rename(final)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(final)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=RUNS / "cpu")
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=EMBEDDED,
        help="default: the shipped checkpoint's tokenizer",
    )
    p.add_argument("--preset", default="embedded", choices=sorted(PRESETS))
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", default="wsd", choices=("wsd", "cosine"))
    p.add_argument(
        "--warmup", type=float, default=0.05, help="share of the run (keep < 0.1 on short runs)"
    )
    p.add_argument("--decay", type=float, default=0.2, help="wsd: share of the run spent decaying")
    p.add_argument(
        "--max-steps",
        type=int,
        default=100000,
        help="progress for the LR schedule (unless --time-budget)",
    )
    p.add_argument(
        "--time-budget", type=float, default=0, help="seconds of training; LR schedule follows time"
    )
    p.add_argument(
        "--stop-after",
        type=float,
        default=0,
        help="stop this invocation after N seconds (resume later)",
    )
    p.add_argument(
        "--noise", default="uniform", choices=("uniform", "masked"), help="canvas forward process"
    )
    p.add_argument("--encoder-positions", type=int, default=64)
    p.add_argument("--encoder-weight", type=float, default=1.0)
    p.add_argument("--self-conditioning", type=float, default=0.5)
    p.add_argument("--probe-every", type=int, default=200)
    p.add_argument("--probe-size", type=int, default=64, help="validation holes per probe")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--probe-steps", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the decoder and encoder stacks"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--export",
        type=Path,
        help="at the end, write the best-by-validation checkpoint here (bf16 shards)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--init",
        type=Path,
        help="start from these weights (fresh optimizer and schedule), e.g. the shipped ones",
    )
    p.add_argument(
        "--split", default="train", help="pre-tokenised shard model/data/<split>_tokens.npy"
    )
    p.add_argument(
        "--log", type=Path, default=TRAINING_LOG, help="committed log: one line appended per run"
    )
    p.add_argument(
        "--note", default="", help="free text for the training log (what this run tried)"
    )
    return p.parse_args(argv)


def load_model(args, tok, run: Path):
    """Resume run/ckpt, else start from --init, else a fresh preset; returns (model, optimizer state, state)."""
    state = {"step": 0, "tokens": 0, "seconds": 0.0, "preset": args.preset, "best_em": -1.0}
    if (run / "ckpt" / "train_state.pt").exists():
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(
            run / "ckpt", dtype=torch.float32, attn_implementation="sdpa"
        )
        saved = torch.load(run / "ckpt" / "train_state.pt", map_location="cpu", weights_only=False)
        opt_state = saved.pop("opt")
        state.update(saved)
        print(f"resumed {run} at step {state['step']}, {state['tokens'] / 1e6:.1f}M tokens")
        return model, opt_state, state
    if args.init:
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(
            args.init, dtype=torch.float32, attn_implementation="sdpa"
        )
        print(f"initialised from {args.init}")
    else:
        model = DiffusionGemmaForBlockDiffusion(build_config(tok, PRESETS[args.preset]))
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.bos_token_id = tok.bos_token_id
    # The noise and the sampler that matches it travel in the checkpoint's config (issue 8: "the sampler named
    # in the checkpoint's config"); the engine reads `diffgem_sampler`.
    model.config.diffgem_noise = args.noise
    model.config.diffgem_sampler = "masked_confidence" if args.noise == "masked" else "uniform"
    if args.noise == "masked":
        model.config.diffgem_mask_token_id = int(model.config.pad_token_id)
    return model, None, state


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    if args.device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = True
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    run = args.run
    run.mkdir(parents=True, exist_ok=True)
    log_path = run / "train.log"
    model, opt_state, state = load_model(args, tok, run)
    if getattr(model.config, "diffgem_noise", "uniform") != args.noise:
        raise SystemExit(
            f"{run} was trained with {model.config.diffgem_noise} noise, not {args.noise}"
        )
    model.to(args.device).train()
    mask_id = mask_token_id(model) if args.noise == "masked" else None
    canvas_length = model.config.canvas_length
    vocab_size = model.config.text_config.vocab_size
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        fused=args.device == "cuda",
    )
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    if args.compile:
        # Compile the two stacks, not the whole model: the cache object crosses between them.
        model.model.encoder.compile(dynamic=True)
        model.model.decoder.compile(dynamic=True)

    loader = torch.utils.data.DataLoader(
        Batches(
            args.split, args.tokenizer, canvas_length, args.batch_size, args.seed + state["step"]
        ),
        batch_size=None,
        num_workers=args.workers,
        pin_memory=args.device == "cuda",
        persistent_workers=args.workers > 0,
        prefetch_factor=4 if args.workers > 0 else None,
    )
    probe_batch = None
    if (DATA / "validation_tokens.npy").exists():
        ho = make_sampler(
            "validation",
            args.tokenizer,
            canvas_length,
            1234,
            {"rest_of_line": 0.4, "whole_line": 0.3, "char": 0.3},
        )
        probe_batch = {
            k: torch.from_numpy(np.asarray(v)).to(args.device)
            for k, v in vars(ho.batch(args.probe_size)).items()
        }

    log = open(log_path, "a")
    print(
        json.dumps(
            {"event": "start", "params": n_params, "device": args.device, **vars(args)}, default=str
        ),
        file=log,
        flush=True,
    )
    start_tokens, t0, last, tokens_window = state["tokens"], time.time(), time.time(), 0
    first_loss: float | None = None
    stats: dict = {}
    bar = tqdm(
        total=args.max_steps if not args.time_budget else None,
        initial=state["step"],
        dynamic_ncols=True,
        mininterval=2,
    )
    for batch in loader:
        progress = (
            state["seconds"] / args.time_budget
            if args.time_budget
            else state["step"] / args.max_steps
        )
        if progress >= 1 or (args.stop_after and time.time() - t0 >= args.stop_after):
            break
        if args.schedule == "wsd" and progress >= 1 - args.decay and not (run / "stable").exists():
            save(
                model, opt, state, run, "stable"
            )  # the next short run resumes here, before the decay
        for g in opt.param_groups:
            g["lr"] = lr_at(progress, args.lr, args.warmup, args.schedule, args.decay)
        b = {k: v.to(args.device, non_blocking=True) for k, v in batch.items()}
        with autocast(args.device):
            loss, stats = loss_step(model, b, args, vocab_size)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        first_loss = stats["loss"] if first_loss is None else first_loss
        n_tokens = int(b["prompt_len"].sum()) + b["canvas"].numel()
        state["step"] += 1
        state["tokens"] += n_tokens
        tokens_window += n_tokens
        now = time.time()
        state["seconds"] += now - last
        last = now
        if state["step"] % args.log_every == 0:
            rate = tokens_window / max(1e-9, state["seconds"] - state.get("_window_start", 0.0))
            state["_window_start"] = state["seconds"]
            tokens_window = 0
            row = {
                "step": state["step"],
                "tokens": state["tokens"],
                "seconds": round(state["seconds"], 1),
                "lr": opt.param_groups[0]["lr"],
                "tok_per_s": round(rate),
                **{k: round(v, 4) for k, v in stats.items()},
            }
            if probe_batch is not None and state["step"] % args.probe_every == 0:
                row.update(
                    probe(
                        model, probe_batch, tok.eos_token_id, vocab_size, args.probe_steps, mask_id
                    )
                )
                if (
                    row["probe_exact"] > state["best_em"]
                ):  # ship-best: validation exact match, not loss
                    state["best_em"] = row["probe_exact"]
                    save(model, None, state, run, "best")
                last = time.time()  # probe time is not training time
            print(json.dumps(row), file=log, flush=True)
            bar.set_postfix(
                loss=f"{stats['loss']:.3f}",
                acc=f"{stats['acc']:.2f}",
                tok_s=f"{rate:.0f}",
                **(
                    {"em": row["probe_exact"], "empty": row["probe_empty"]}
                    if "probe_exact" in row
                    else {}
                ),
            )
        bar.update(1)
        if state["step"] % args.save_every == 0:
            save(model, opt, state, run)
            plot_curve(log_path, run / "loss_curve.png")
            last = time.time()
    bar.close()
    save(model, opt, state, run)
    plot_curve(log_path, run / "loss_curve.png")
    final = {}
    if probe_batch is not None:
        final = probe(model, probe_batch, tok.eos_token_id, vocab_size, args.probe_steps, mask_id)
        if final["probe_exact"] > state["best_em"]:
            state["best_em"] = final["probe_exact"]
            save(model, None, state, run, "best")
        print(json.dumps({"event": "end", **state, **final}), file=log, flush=True)
        print("final probe", final, state)
    append_training_log(args, state, start_tokens, first_loss, stats, final, n_params)
    if args.export:
        best = run / "best"
        chosen = (
            DiffusionGemmaForBlockDiffusion.from_pretrained(best, dtype=torch.float32)
            if best.exists()
            else model
        )
        export(chosen, tok, args.export)


def append_training_log(
    args, state: dict, start_tokens: int, first_loss, stats: dict, final: dict, n_params: int
) -> None:
    """One line per run in the committed log: what ran, tokens seen, loss, validation exact match."""
    row = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": str(args.run.name),
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "params": n_params,
        "init": str(args.init) if args.init else None,
        "noise": args.noise,
        "schedule": args.schedule,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "steps": state["step"],
        "tokens_this_run": state["tokens"] - start_tokens,
        "tokens_total": state["tokens"],
        "seconds": round(state["seconds"], 1),
        "tok_per_s": round((state["tokens"] - start_tokens) / max(state["seconds"], 1e-9)),
        "loss_first": first_loss,
        "loss_last": stats.get("loss"),
        "validation_probe_em": final.get("probe_exact"),
        "validation_probe_empty": final.get("probe_empty"),
        "best_validation_probe_em": state.get("best_em"),
        "probe_size": args.probe_size,
        "note": args.note,
    }
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as f:
        f.write(json.dumps(row) + "\n")


def export(model, tok, out: Path, shard: str = "16MB") -> None:
    """bf16 copy in shards small enough for the device's 16 MiB file limit; loads back as fp32 with from_pretrained."""
    out.mkdir(parents=True, exist_ok=True)
    model.to("cpu", torch.bfloat16).save_pretrained(out, max_shard_size=shard)
    tok.save_pretrained(out)


if __name__ == "__main__":
    main()
