"""Training objective: encoder/decoder passes over batches, the forward process (uniform or masked), the loss,
and the small batched probe sampler that measures validation exact match during training.

Boundary: tensors in, loss and statistics out; no data loading, schedule or checkpoints (train.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import DynamicCache

from .examples import Batch


def softcap_logits(model: DiffusionGemmaForBlockDiffusion, hidden: torch.Tensor) -> torch.Tensor:
    """The model's own head: tied LM head, then Gemma's tanh soft-capping (as in its forward)."""
    logits = model.lm_head(hidden).float()
    cap = model.final_logit_softcapping
    return torch.tanh(logits / cap) * cap if cap else logits


def to_device(batch: Batch, device: str) -> dict[str, torch.Tensor]:
    return {
        k: torch.as_tensor(getattr(batch, k)).to(device, non_blocking=True)
        for k in batch.__dataclass_fields__
    }


def encode(model, prompt: torch.Tensor, prompt_len: torch.Tensor):
    """Causal encoder pass over right-padded prompts; returns (last hidden [B, Lp, H], KV cache)."""
    B, Lp = prompt.shape
    attn = (torch.arange(Lp, device=prompt.device)[None, :] < prompt_len[:, None]).long()  # [B, Lp]
    cache = DynamicCache(config=model.config.get_text_config())
    out = model.model.encoder(
        input_ids=prompt, attention_mask=attn, past_key_values=cache, use_cache=True
    )
    return out.last_hidden_state, out.past_key_values, attn


def decode(model, canvas, cache, attn, prompt_len, sc_logits=None, sc_mask=None) -> torch.Tensor:
    """Bidirectional decoder pass over the canvas; positions continue each prompt as the engine's do."""
    B, C = canvas.shape
    dec_attn = torch.cat(
        [attn, torch.ones(B, C, dtype=attn.dtype, device=attn.device)], dim=1
    )  # [B, Lp + C]
    positions = prompt_len[:, None] + torch.arange(C, device=canvas.device)[None, :]  # [B, C]
    out = model.model.decoder(
        decoder_input_ids=canvas,
        past_key_values=cache,
        self_conditioning_logits=sc_logits,
        self_conditioning_mask=sc_mask,
        decoder_attention_mask=dec_attn,
        decoder_position_ids=positions,
    )
    return softcap_logits(model, out.last_hidden_state)  # [B, C, V]


def corrupt(
    start: torch.Tensor,
    vocab_size: int,
    t: torch.Tensor,
    pinned: torch.Tensor | None = None,
    mask_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward process: each free canvas position moves with probability t — to a uniform random id
    (uniform-state) or to `mask_id` (masked / absorbing). Pinned positions never move."""
    move = torch.rand(start.shape, device=start.device) < t[:, None]  # [B, C]
    if pinned is not None:
        move &= ~pinned
    if mask_id is None:
        noise = torch.randint(0, vocab_size, start.shape, device=start.device)
    else:
        noise = torch.full_like(start, mask_id)
    return torch.where(move, noise, start), move


def mask_token_id(model) -> int:
    """The masked objective's mask id: the checkpoint's `diffgem_mask_token_id`, else `<pad>` — pad never occurs
    in a canvas (padding there is EOS), so the shipped 8,192-token vocabulary needs no new token."""
    found = getattr(model.config, "diffgem_mask_token_id", None)
    return int(found if found is not None else model.config.pad_token_id)


def chunked_cross_entropy(
    model, hidden: torch.Tensor, target: torch.Tensor, chunk: int = 8192
) -> torch.Tensor:
    """Per-row CE through the tied head, `chunk` rows at a time under activation checkpointing, so the
    [rows, vocab] fp32 logits never exist whole (the encoder loss has B x 256 rows)."""
    from torch.utils.checkpoint import checkpoint

    def piece(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(softcap_logits(model, h), y, reduction="none")

    outs = [
        checkpoint(piece, hidden[i : i + chunk], target[i : i + chunk], use_reentrant=False)
        for i in range(0, hidden.shape[0], chunk)
    ]
    return torch.cat(outs)


def loss_step(model, b: dict, args, vocab_size: int) -> tuple[torch.Tensor, dict]:
    prompt, prompt_len, canvas = b["prompt"], b["prompt_len"], b["canvas"]
    B = canvas.shape[0]
    hidden, cache, attn = encode(model, prompt, prompt_len)

    # Encoder side: next-token loss on a sample of prompt positions: the LM head costs d x V multiply-adds
    # per scored position (2.1M at d=256, V=8192), and scoring all ~480 tripled the CPU step time.
    valid = attn[:, 1:].bool()  # target position exists and is not padding
    scores = torch.rand(valid.shape, device=prompt.device).masked_fill(~valid, -1.0)
    k = min(args.encoder_positions, valid.shape[1])
    pick = scores.topk(k, dim=1).indices  # [B, k]
    keep = torch.gather(valid, 1, pick)
    h = torch.gather(hidden[:, :-1], 1, pick[..., None].expand(-1, -1, hidden.shape[-1]))
    target = torch.gather(prompt[:, 1:], 1, pick)
    enc_ce = chunked_cross_entropy(model, h.flatten(0, 1), target.flatten())
    enc_loss = (enc_ce * keep.flatten()).sum() / keep.sum().clamp(min=1)

    # Decoder side: denoise a corrupted canvas (t ~ U(0.001, 1)); edit examples start from the old text.
    t = torch.rand(B, device=canvas.device) * 0.999 + 0.001
    masked = args.noise == "masked"
    noisy, moved = corrupt(
        b["start"], vocab_size, t, b["pinned"], mask_token_id(model) if masked else None
    )
    sc_logits = sc_mask = None
    if args.self_conditioning > 0:
        sc_mask = torch.rand(B, device=canvas.device) < args.self_conditioning
        with torch.no_grad():
            sc_logits = decode(model, noisy, cache, attn, prompt_len).detach()
    logits = decode(model, noisy, cache, attn, prompt_len, sc_logits, sc_mask)
    w = b[
        "loss_weight"
    ].float()  # 1 on fills + first EOS, examples.PAD_WEIGHT on padding, 0 on pinned code
    if masked:
        # MDLM's ELBO: only masked positions carry a loss, weighted 1/t (clamped: t starts at 0.001).
        w = w * moved / t.clamp(min=0.05)[:, None]
    ce = F.cross_entropy(logits.flatten(0, 1), canvas.flatten(), reduction="none").view_as(w)
    dec_loss = (ce * w).sum() / b["loss_weight"].float().sum().clamp(min=1)
    loss = dec_loss + args.encoder_weight * enc_loss
    with torch.no_grad():
        pred = logits.argmax(-1)
        mid = torch.arange(canvas.shape[1], device=canvas.device)[None] < b["middle_len"][:, None]
        acc = ((pred == canvas) & mid).sum() / mid.sum().clamp(min=1)
    return loss, {
        "loss": loss.item(),
        "dec": dec_loss.item(),
        "enc": enc_loss.item(),
        "acc": acc.item(),
    }


@torch.no_grad()
def denoise(
    model,
    prompt,
    prompt_len,
    canvas_length: int,
    vocab_size: int,
    steps: int,
    seed: int = 0,
    mask_id: int | None = None,
) -> torch.Tensor:
    """Small confidence sampler for the probe: commit the most confident positions, re-draw the rest
    (uniform-state) or leave them masked (masked noise, `mask_id`)."""
    g = torch.Generator(device=prompt.device).manual_seed(seed)
    _, cache, attn = encode(model, prompt, prompt_len)
    B = prompt.shape[0]
    canvas = torch.randint(0, vocab_size, (B, canvas_length), device=prompt.device, generator=g)
    if mask_id is not None:
        canvas.fill_(mask_id)
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
        if mask_id is not None:
            noise.fill_(mask_id)
        canvas = torch.where(new_fixed, committed, noise)
        fixed = new_fixed
    return canvas


def probe(
    model, sampler_batch: dict, eos: int, vocab_size: int, steps: int, mask_id: int | None = None
) -> dict:
    """Exact match and empty-prediction rate on fixed validation single-line holes (token and mid-token cuts)."""
    model.eval()
    with autocast(sampler_batch["prompt"].device.type):
        out = denoise(
            model,
            sampler_batch["prompt"],
            sampler_batch["prompt_len"],
            sampler_batch["canvas"].shape[1],
            vocab_size,
            steps,
            mask_id=mask_id,
        )
    model.train()
    exact = empty = 0
    for row, truth, n in zip(
        out.tolist(),
        sampler_batch["canvas"].tolist(),
        sampler_batch["middle_len"].tolist(),
        strict=True,
    ):
        middle = row[: row.index(eos)] if eos in row else row
        exact += middle == truth[:n]
        empty += len(middle) == 0
    return {"probe_exact": exact / len(out), "probe_empty": empty / len(out)}


def autocast(device_type: str):
    if device_type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
