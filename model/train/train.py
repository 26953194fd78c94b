"""Train the embedded DiffusionGemma on FIM examples: uniform-state canvas denoising + encoder causal-LM loss.

Recipe (DiffusionGemma's published fine-tuning recipe, REFERENCE.md): corruption level t ~ U(0.001, 1), corrupted
canvas positions replaced by uniform random ids, cross-entropy over the canvas (EOS padding after the first EOS
down-weighted, against the pilot's EOS collapse), next-token loss on the encoder side through the tied LM head,
self-conditioning with probability 0.5. Resumes from `--run`; runs on CPU and CUDA (bf16 autocast).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import DynamicCache

from .config import PRESETS, build_config
from .examples import Batch, FimSampler

DATA = Path(__file__).resolve().parent.parent / "data"
RUNS = Path(__file__).resolve().parent.parent / "runs"


def softcap_logits(model: DiffusionGemmaForBlockDiffusion, hidden: torch.Tensor) -> torch.Tensor:
    """The model's own head: tied LM head, then Gemma's tanh soft-capping (as in its forward)."""
    logits = model.lm_head(hidden).float()
    cap = model.final_logit_softcapping
    return torch.tanh(logits / cap) * cap if cap else logits


def to_device(batch: Batch, device: str) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(getattr(batch, k)).to(device, non_blocking=True) for k in batch.__dataclass_fields__}


def encode(model, prompt: torch.Tensor, prompt_len: torch.Tensor):
    """Causal encoder pass over right-padded prompts; returns (last hidden [B, Lp, H], KV cache)."""
    B, Lp = prompt.shape
    attn = (torch.arange(Lp, device=prompt.device)[None, :] < prompt_len[:, None]).long()  # [B, Lp]
    cache = DynamicCache(config=model.config.get_text_config())
    out = model.model.encoder(input_ids=prompt, attention_mask=attn, past_key_values=cache, use_cache=True)
    return out.last_hidden_state, out.past_key_values, attn


def decode(model, canvas, cache, attn, prompt_len, sc_logits=None, sc_mask=None) -> torch.Tensor:
    """Bidirectional decoder pass over the canvas; positions continue each prompt as the engine's do."""
    B, C = canvas.shape
    dec_attn = torch.cat([attn, torch.ones(B, C, dtype=attn.dtype, device=attn.device)], dim=1)  # [B, Lp + C]
    positions = prompt_len[:, None] + torch.arange(C, device=canvas.device)[None, :]  # [B, C]
    out = model.model.decoder(
        decoder_input_ids=canvas, past_key_values=cache, self_conditioning_logits=sc_logits,
        self_conditioning_mask=sc_mask, decoder_attention_mask=dec_attn, decoder_position_ids=positions,
    )
    return softcap_logits(model, out.last_hidden_state)  # [B, C, V]


def corrupt(start: torch.Tensor, vocab_size: int, t: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform-state forward process: each canvas position is re-drawn uniformly with probability t."""
    move = torch.rand(start.shape, device=start.device) < t[:, None]  # [B, C]
    noise = torch.randint(0, vocab_size, start.shape, device=start.device)
    return torch.where(move, noise, start), move


def canvas_weights(canvas: torch.Tensor, middle_len: torch.Tensor, pad_weight: float) -> torch.Tensor:
    """1 on the middle and its first EOS, `pad_weight` on the EOS padding after it (pilot: EOS collapse)."""
    pos = torch.arange(canvas.shape[1], device=canvas.device)[None, :]
    return torch.where(pos <= middle_len[:, None], 1.0, pad_weight)  # [B, C]


def loss_step(model, b: dict, args, vocab_size: int) -> tuple[torch.Tensor, dict]:
    prompt, prompt_len, canvas = b["prompt"], b["prompt_len"], b["canvas"]
    B = canvas.shape[0]
    hidden, cache, attn = encode(model, prompt, prompt_len)

    # Encoder side: next-token loss on a sample of prompt positions (full LM head over ~480 tokens triples
    # the step time on CPU; REFERENCE.md, CPU pilot).
    valid = attn[:, 1:].bool()  # target position exists and is not padding
    scores = torch.rand(valid.shape, device=prompt.device).masked_fill(~valid, -1.0)
    k = min(args.encoder_positions, valid.shape[1])
    pick = scores.topk(k, dim=1).indices  # [B, k]
    keep = torch.gather(valid, 1, pick)
    h = torch.gather(hidden[:, :-1], 1, pick[..., None].expand(-1, -1, hidden.shape[-1]))
    target = torch.gather(prompt[:, 1:], 1, pick)
    enc_logits = softcap_logits(model, h)
    enc_loss = (F.cross_entropy(enc_logits.flatten(0, 1), target.flatten(), reduction="none") * keep.flatten()).sum() / keep.sum()

    # Decoder side: denoise a corrupted canvas (t ~ U(0.001, 1)); edit examples start from the old text.
    t = torch.rand(B, device=canvas.device) * 0.999 + 0.001
    noisy, moved = corrupt(b["start"], vocab_size, t)
    sc_logits = sc_mask = None
    if args.self_conditioning > 0:
        sc_mask = torch.rand(B, device=canvas.device) < args.self_conditioning
        with torch.no_grad():
            sc_logits = decode(model, noisy, cache, attn, prompt_len).detach()
    logits = decode(model, noisy, cache, attn, prompt_len, sc_logits, sc_mask)
    w = canvas_weights(canvas, b["middle_len"], args.pad_weight)
    ce = F.cross_entropy(logits.flatten(0, 1), canvas.flatten(), reduction="none").view_as(w)
    dec_loss = (ce * w).sum() / w.sum()
    loss = dec_loss + args.encoder_weight * enc_loss
    with torch.no_grad():
        pred = logits.argmax(-1)
        mid = torch.arange(canvas.shape[1], device=canvas.device)[None] < b["middle_len"][:, None]
        acc = ((pred == canvas) & mid).sum() / mid.sum().clamp(min=1)
    return loss, {"loss": loss.item(), "dec": dec_loss.item(), "enc": enc_loss.item(), "acc": acc.item()}


@torch.no_grad()
def denoise(model, prompt, prompt_len, canvas_length: int, vocab_size: int, steps: int, seed: int = 0) -> torch.Tensor:
    """Small confidence sampler for the probe: commit the most confident positions, re-draw the rest."""
    g = torch.Generator(device=prompt.device).manual_seed(seed)
    _, cache, attn = encode(model, prompt, prompt_len)
    B = prompt.shape[0]
    canvas = torch.randint(0, vocab_size, (B, canvas_length), device=prompt.device, generator=g)
    fixed = torch.zeros(B, canvas_length, dtype=torch.bool, device=prompt.device)
    sc = None
    for step in range(steps):
        logits = decode(model, canvas, cache, attn, prompt_len, sc)
        sc = logits
        conf, pred = logits.softmax(-1).max(-1)
        n_fixed = math.ceil(canvas_length * (step + 1) / steps)
        conf = conf.masked_fill(fixed, 2.0)  # committed positions stay committed
        order = conf.argsort(dim=1, descending=True)
        new_fixed = torch.zeros_like(fixed).scatter(1, order[:, :n_fixed], True)
        committed = torch.where(fixed, canvas, pred)
        noise = torch.randint(0, vocab_size, canvas.shape, device=canvas.device, generator=g)
        canvas = torch.where(new_fixed, committed, noise)
        fixed = new_fixed
    return canvas


def probe(model, sampler_batch: dict, eos: int, vocab_size: int, steps: int) -> dict:
    """Exact match and empty-prediction rate on fixed held-out single-line holes."""
    model.eval()
    with autocast(sampler_batch["prompt"].device.type):
        out = denoise(model, sampler_batch["prompt"], sampler_batch["prompt_len"], sampler_batch["canvas"].shape[1], vocab_size, steps)
    model.train()
    exact = empty = 0
    for row, truth, n in zip(out.tolist(), sampler_batch["canvas"].tolist(), sampler_batch["middle_len"].tolist()):
        middle = row[: row.index(eos)] if eos in row else row
        exact += middle == truth[:n]
        empty += len(middle) == 0
    return {"probe_exact": exact / len(out), "probe_empty": empty / len(out)}


def autocast(device_type: str):
    if device_type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


class Batches(torch.utils.data.IterableDataset):
    """Endless FIM batches; each DataLoader worker gets its own seed."""

    def __init__(self, split: str, tokenizer_dir: Path, canvas_length: int, batch_size: int, seed: int, kinds=None):
        self.args = (split, tokenizer_dir, canvas_length, batch_size, seed, kinds)

    def __iter__(self):
        split, tokenizer_dir, canvas_length, batch_size, seed, kinds = self.args
        info = torch.utils.data.get_worker_info()
        sampler = make_sampler(split, tokenizer_dir, canvas_length, seed * 1000 + (info.id if info else 0), kinds)
        while True:
            b = sampler.batch(batch_size)
            yield {k: torch.from_numpy(np.asarray(getattr(b, k))) for k in b.__dataclass_fields__}


def make_sampler(split_or_arrays, tokenizer_dir: Path, canvas_length: int, seed: int, kinds: dict | None = None) -> FimSampler:
    """FimSampler over a pre-tokenised split; `kinds` overrides its hole-kind mixture (e.g. single-line probes)."""
    if isinstance(split_or_arrays, str):
        tokens = np.asarray(np.load(DATA / f"{split_or_arrays}_tokens.npy", mmap_mode="r"))
        starts = np.load(DATA / f"{split_or_arrays}_starts.npy")
    else:
        tokens, starts = split_or_arrays
    sampler = FimSampler(tokens, starts, tokenizer_dir, canvas_length=canvas_length, seed=seed)
    if kinds:
        sampler.kinds = list(kinds)
        sampler.weights = np.array(list(kinds.values())) / sum(kinds.values())
    return sampler


def lr_at(progress: float, base: float, warmup: float = 0.05) -> float:
    if progress < warmup:
        return base * progress / warmup
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup)))))


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
    ax[0].set_xlabel("tokens seen (M)"), ax[0].set_ylabel("loss"), ax[0].legend(), ax[0].set_yscale("log")
    probes = [r for r in rows if "probe_exact" in r]
    if probes:
        ax[1].plot([r["tokens"] / 1e6 for r in probes], [r["probe_exact"] for r in probes], label="probe exact match")
        ax[1].plot([r["tokens"] / 1e6 for r in probes], [r["probe_empty"] for r in probes], label="empty predictions")
        ax[1].set_xlabel("tokens seen (M)"), ax[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def save(model, opt, state: dict, run: Path) -> None:
    tmp = run / "ckpt.tmp"
    model.save_pretrained(tmp)
    torch.save({"opt": opt.state_dict(), **state}, tmp / "train_state.pt")
    final = run / "ckpt"
    if final.exists():
        old = run / "ckpt.old"
        final.rename(old)
        tmp.rename(final)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(final)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=RUNS / "cpu")
    p.add_argument("--tokenizer", type=Path, default=DATA / "tokenizer")
    p.add_argument("--preset", default="embedded", choices=sorted(PRESETS))
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-steps", type=int, default=100000, help="progress for the LR schedule (unless --time-budget)")
    p.add_argument("--time-budget", type=float, default=0, help="seconds of training; LR schedule follows time")
    p.add_argument("--stop-after", type=float, default=0, help="stop this invocation after N seconds (resume later)")
    p.add_argument("--encoder-positions", type=int, default=64)
    p.add_argument("--encoder-weight", type=float, default=1.0)
    p.add_argument("--pad-weight", type=float, default=0.1)
    p.add_argument("--self-conditioning", type=float, default=0.5)
    p.add_argument("--probe-every", type=int, default=200)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--probe-steps", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--export", type=Path, help="at the end, also write a bf16 sharded checkpoint here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, help="start from these weights (fresh optimizer and schedule), e.g. a GPU run's")
    p.add_argument("--split", default="train", help="pre-tokenised shard model/data/<split>_tokens.npy")
    args = p.parse_args()

    from tqdm import tqdm

    torch.manual_seed(args.seed)
    if args.device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    run = args.run
    run.mkdir(parents=True, exist_ok=True)
    log_path = run / "train.log"
    state = {"step": 0, "tokens": 0, "seconds": 0.0, "preset": args.preset}
    if (run / "ckpt" / "train_state.pt").exists():
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(run / "ckpt", dtype=torch.float32)
        saved = torch.load(run / "ckpt" / "train_state.pt", map_location="cpu", weights_only=False)
        opt_state = saved.pop("opt")
        state.update(saved)
        print(f"resumed {run} at step {state['step']}, {state['tokens'] / 1e6:.1f}M tokens")
    elif args.init:
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(args.init, dtype=torch.float32)
        opt_state = None
        print(f"initialised from {args.init}")
    else:
        config = build_config(tok, PRESETS[args.preset])
        model = DiffusionGemmaForBlockDiffusion(config)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.bos_token_id = tok.bos_token_id
        opt_state = None
    model.to(args.device).train()
    canvas_length = model.config.canvas_length
    vocab_size = model.config.text_config.vocab_size
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), fused=args.device == "cuda")
    if opt_state is not None:
        opt.load_state_dict(opt_state)

    loader = torch.utils.data.DataLoader(
        Batches(args.split, args.tokenizer, canvas_length, args.batch_size, args.seed + state["step"]),
        batch_size=None, num_workers=args.workers, pin_memory=args.device == "cuda",
        persistent_workers=args.workers > 0, prefetch_factor=4 if args.workers > 0 else None,
    )
    probe_batch = None
    if (DATA / "held_out_tokens.npy").exists():
        ho = make_sampler("held_out", args.tokenizer, canvas_length, 1234, {"rest_of_line": 0.5, "whole_line": 0.5})
        probe_batch = {k: torch.from_numpy(np.asarray(v)).to(args.device) for k, v in vars(ho.batch(64)).items()}

    log = open(log_path, "a")
    print(json.dumps({"event": "start", "params": n_params, "device": args.device, **vars(args)}, default=str), file=log, flush=True)
    t0 = time.time()
    last = time.time()
    tokens_window = 0
    bar = tqdm(total=args.max_steps if not args.time_budget else None, initial=state["step"], dynamic_ncols=True, mininterval=2)
    for batch in loader:
        progress = state["seconds"] / args.time_budget if args.time_budget else state["step"] / args.max_steps
        if progress >= 1 or (args.stop_after and time.time() - t0 >= args.stop_after):
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(progress, args.lr)
        b = {k: v.to(args.device, non_blocking=True) for k, v in batch.items()}
        with autocast(args.device):
            loss, stats = loss_step(model, b, args, vocab_size)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
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
            row = {"step": state["step"], "tokens": state["tokens"], "seconds": round(state["seconds"], 1),
                   "lr": opt.param_groups[0]["lr"], "tok_per_s": round(rate), **{k: round(v, 4) for k, v in stats.items()}}
            if probe_batch is not None and state["step"] % args.probe_every == 0:
                row.update(probe(model, probe_batch, tok.eos_token_id, vocab_size, args.probe_steps))
                last = time.time()  # probe time is not training time
            print(json.dumps(row), file=log, flush=True)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['acc']:.2f}", tok_s=f"{rate:.0f}",
                            **({"em": row["probe_exact"], "empty": row["probe_empty"]} if "probe_exact" in row else {}))
        bar.update(1)
        if state["step"] % args.save_every == 0:
            save(model, opt, state, run)
            plot_curve(log_path, run / "loss_curve.png")
            last = time.time()
    bar.close()
    save(model, opt, state, run)
    plot_curve(log_path, run / "loss_curve.png")
    if probe_batch is not None:
        final = probe(model, probe_batch, tok.eos_token_id, vocab_size, args.probe_steps)
        print(json.dumps({"event": "end", **state, **final}), file=log, flush=True)
        print("final probe", final, state)
    if args.export:
        export(model, tok, args.export)


def export(model, tok, out: Path, shard: str = "16MB") -> None:
    """bf16 copy in shards small enough for the device's 16 MiB file limit; loads back as fp32 with from_pretrained."""
    out.mkdir(parents=True, exist_ok=True)
    model.to("cpu", torch.bfloat16).save_pretrained(out, max_shard_size=shard)
    tok.save_pretrained(out)


if __name__ == "__main__":
    main()
