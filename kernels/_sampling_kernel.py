"""Triton kernels of the fused sampling step: one read of [C, V] logits -> per-row softmax statistics.
Imported lazily by `sampling.py` (never at package import), so a missing Triton only disables the kernel.

Only Triton APIs present in both 3.6 and 3.9 are used (no libdevice, no tl.rand, no descriptors).
"""

from __future__ import annotations

import triton
import triton.language as tl

# Lane sentinel for "no finite logit seen yet". Finite (unlike -inf) so that the online updates
# (sentinel - max) * 0 stay 0 instead of NaN; -inf logits (pinned positions) never beat it.
NO_MAX = tl.constexpr(-3.0e38)
INT32_MAX = tl.constexpr(2147483647)


@triton.jit
def _hash_uniform(idx, key_a, key_b):
    """Counter-based uniform in (0, 1) from a uint32 counter; bit-identical to `_hash_uniform_torch`.

    Two xor-shift-multiply rounds (a 31-bit-multiplier variant of lowbias32); the key enters
    twice so that two seeds never give a mere permutation of each other's noise.
    """
    h = idx ^ key_a
    h = h ^ (h >> 16)
    h = h * 0x7FEB352D
    h = h ^ key_b
    h = h ^ (h >> 15)
    h = h * 0x5BD1E995
    h = h ^ (h >> 16)
    # 23 high bits + 0.5, times 2^-23: exact in fp32, strictly inside (0, 1).
    return ((h >> 9).to(tl.float32) + 0.5) * 1.1920928955078125e-07


@triton.jit
def _combine(m, s, t, a_idx, g_val, g_idx):
    """Merge partial online-softmax states (over lanes or over vocab splits) into one.

    Each state holds m = its max, s = sum exp(y - m), t = sum exp(y - m) * (y - m), the first
    column reaching m, and the best Gumbel-perturbed value with its first column.
    """
    m_max = tl.max(m, axis=0)
    scale = tl.exp(m - m_max)
    s_sum = tl.sum(scale * s, axis=0)
    # Re-centre t on the common max: sum e'(y - M) = scale * (t + (m - M) * s).
    t_sum = tl.sum(tl.where(s > 0, scale * (t + (m - m_max) * s), 0.0), axis=0)
    # Ties go to the lowest column, as torch.argmax does.
    a_best = tl.min(tl.where(m == m_max, a_idx, INT32_MAX), axis=0)
    g_max = tl.max(g_val, axis=0)
    g_best = tl.min(tl.where(g_val == g_max, g_idx, INT32_MAX), axis=0)
    return m_max, s_sum, t_sum, a_best, g_max, g_best


@triton.jit
def _store_final(
    row, m_max, s_sum, t_sum, a_best, g_best, sampled_ptr, argmax_ptr, conf_ptr, ent_ptr, lse_ptr
):
    log_s = tl.log(s_sum)
    tl.store(sampled_ptr + row, g_best.to(tl.int64))
    tl.store(argmax_ptr + row, a_best.to(tl.int64))
    # p(argmax) = exp(M - lse) = 1 / s; H = lse - E_p[y] = log s - t / s (nats).
    tl.store(conf_ptr + row, 1.0 / s_sum)
    tl.store(ent_ptr + row, tl.maximum(log_s - t_sum / s_sum, 0.0))
    tl.store(lse_ptr + row, m_max + log_s)


# Seed keys are arbitrary ints: one that happens to be 1 must not become a constexpr. V and
# cols_per_split stay specialised: their divisibility by 16 is what lets loads vectorise.
@triton.jit(do_not_specialize=["key_a", "key_b"])
def _fused_sampling_kernel(
    logits_ptr,
    stride_row,
    sampled_ptr,
    argmax_ptr,
    conf_ptr,
    ent_ptr,
    lse_ptr,  # [C] outputs (FINALIZE)
    part_m_ptr,
    part_s_ptr,
    part_t_ptr,
    part_a_ptr,
    part_gv_ptr,
    part_gi_ptr,  # [C, S] partials
    V,
    cols_per_split,
    inv_temperature,
    softcap,
    two_inv_softcap,
    key_a,
    key_b,
    HAS_SOFTCAP: tl.constexpr,
    FINALIZE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program per (canvas row, vocab split): a single pass over its logits.

    Per lane it keeps an online softmax (max, sum-exp, sum-exp * centred logit), the running
    argmax, and the running Gumbel-max argmax (y + g, g = -log(-log u), u from the hash of
    (seed, row * V + col)): the sample from softmax(y) without a second read.
    """
    row = tl.program_id(0)
    split = tl.program_id(1)
    n_splits = tl.num_programs(1)
    row_ptr = logits_ptr + row.to(tl.int64) * stride_row
    col_start = tl.multiple_of(split * cols_per_split, BLOCK)  # launcher: a multiple of BLOCK
    col_end = tl.minimum(col_start + cols_per_split, V)
    ka = key_a.to(tl.uint32)
    kb = key_b.to(tl.uint32)
    row_base = (row * V).to(tl.uint32)  # launcher asserts C * V < 2^31

    lanes = tl.arange(0, BLOCK)
    m = tl.full([BLOCK], NO_MAX, tl.float32)
    s = tl.zeros([BLOCK], tl.float32)
    t = tl.zeros([BLOCK], tl.float32)
    a_idx = tl.zeros([BLOCK], tl.int32)
    g_val = tl.full([BLOCK], float("-inf"), tl.float32)
    g_idx = tl.zeros([BLOCK], tl.int32)
    for off in range(col_start, col_end, BLOCK):
        cols = off + lanes  # [BLOCK]
        mask = cols < col_end
        x = tl.load(row_ptr + cols, mask=mask, other=float("-inf")).to(tl.float32)
        if HAS_SOFTCAP:
            # Gemma final-logit softcap, cap * tanh(x / cap), with tanh via exp (no libdevice);
            # clamped so exp never overflows (tanh(15) == 1 in fp32).
            e2 = tl.exp(tl.minimum(tl.maximum(x * two_inv_softcap, -30.0), 30.0))
            x = softcap * (1.0 - 2.0 / (e2 + 1.0))
        y = tl.where(mask, x * inv_temperature, float("-inf"))  # tempered logits
        # Compare the rounded y (never y - m, which may be fused into an FMA) so ties are exact.
        up = y > m
        d = y - m
        ex = tl.exp(-tl.abs(d))  # one exp per element: rescale factor or new term
        t = tl.where(up, ex * (t - d * s), t + tl.where(ex > 0, ex * d, 0.0))
        s = tl.where(up, s * ex + 1.0, s + ex)
        m = tl.where(up, y, m)
        a_idx = tl.where(up, cols, a_idx)

        u = _hash_uniform(row_base + cols.to(tl.uint32), ka, kb)
        z = y - tl.log(-tl.log(u))  # Gumbel-max trick
        g_up = z > g_val
        g_val = tl.where(g_up, z, g_val)
        g_idx = tl.where(g_up, cols, g_idx)

    m_max, s_sum, t_sum, a_best, g_max, g_best = _combine(m, s, t, a_idx, g_val, g_idx)
    if FINALIZE:
        _store_final(
            row,
            m_max,
            s_sum,
            t_sum,
            a_best,
            g_best,
            sampled_ptr,
            argmax_ptr,
            conf_ptr,
            ent_ptr,
            lse_ptr,
        )
    else:
        p = row * n_splits + split
        tl.store(part_m_ptr + p, m_max)
        tl.store(part_s_ptr + p, s_sum)
        tl.store(part_t_ptr + p, t_sum)
        tl.store(part_a_ptr + p, a_best)
        tl.store(part_gv_ptr + p, g_max)
        tl.store(part_gi_ptr + p, g_best)


@triton.jit
def _fused_sampling_reduce_kernel(
    part_m_ptr,
    part_s_ptr,
    part_t_ptr,
    part_a_ptr,
    part_gv_ptr,
    part_gi_ptr,  # [C, S]
    sampled_ptr,
    argmax_ptr,
    conf_ptr,
    ent_ptr,
    lse_ptr,  # [C]
    n_splits,
    BLOCK_S: tl.constexpr,
):
    """Second pass when the vocabulary is split: merge the S partial states of one row."""
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK_S)
    mask = offs < n_splits
    p = row * n_splits + offs
    m = tl.load(part_m_ptr + p, mask=mask, other=NO_MAX)
    s = tl.load(part_s_ptr + p, mask=mask, other=0.0)
    t = tl.load(part_t_ptr + p, mask=mask, other=0.0)
    a_idx = tl.load(part_a_ptr + p, mask=mask, other=INT32_MAX)
    g_val = tl.load(part_gv_ptr + p, mask=mask, other=float("-inf"))
    g_idx = tl.load(part_gi_ptr + p, mask=mask, other=INT32_MAX)
    m_max, s_sum, t_sum, a_best, g_max, g_best = _combine(m, s, t, a_idx, g_val, g_idx)
    _store_final(
        row,
        m_max,
        s_sum,
        t_sum,
        a_best,
        g_best,
        sampled_ptr,
        argmax_ptr,
        conf_ptr,
        ent_ptr,
        lse_ptr,
    )
