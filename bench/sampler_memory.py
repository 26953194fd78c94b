"""Peak CPU memory of one sampler step over DiffusionGemma-sized logits, untiled vs tiled.

Boundary: measures only (`python bench/sampler_memory.py`); each configuration runs in a fresh process and
reads its peak RSS (`ru_maxrss`) before and after the step statistics, over one [256 x 262,144] fp32
logits tensor (256 MiB) — the real model's canvas and vocabulary. `rows=256` is the old one-shot code path.
The children run with a fixed glibc mmap threshold (1 MiB): glibc's dynamic threshold otherwise moves freed
16 MiB tiles into the brk heap, whose fragmentation then measures the allocator rather than the sampler.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

CANVAS, VOCAB = 256, 262_144


def _child(rule: str, rows: int) -> dict:
    import torch
    from diffgem_model import sampler

    torch.manual_seed(0)
    processed = torch.randn(1, CANVAS, VOCAB)
    generator = torch.Generator().manual_seed(0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if rule == "entropy":
        sampler._entropy_rule_stats(processed, generator, rows)
    else:
        sampler._confidence_rule_stats(processed, generator, rows)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rule": rule, "rows": rows, "step_peak_extra_mib": (after - before) / 2**20}


def run() -> list[dict]:
    results = []
    for rule in ("entropy", "confidence"):
        for rows in (CANVAS, 16):
            out = subprocess.run(
                [sys.executable, __file__, "--child", rule, str(rows)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)},
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    return results


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], int(sys.argv[3]))))
    else:
        logits_mib = CANVAS * VOCAB * 4 / 2**20
        results = run()
        print(json.dumps(results))
        for r in results:
            print(
                f"{r['rule']:>10} rule, tiles of {r['rows']:>3} rows: step adds "
                f"{r['step_peak_extra_mib']:.0f} MiB peak over the {logits_mib:.0f} MiB logits"
            )
