#!/usr/bin/env bash
# One training run on a lent GPU machine (no network there): the pre-tokenised shards and the tokenizer travel
# as carried paths (model/data/...); the checkpoint comes back to $OUT as bf16 shards (<= 16 MiB each, <= 8 files).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/pkgs "$OUT"
ln -sfn "$PWD/model" /tmp/pkgs/diffgem_model
export PYTHONPATH=/tmp/pkgs PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 -m diffgem_model.train.train --run /tmp/run --preset embedded --batch-size "${BATCH:-256}" --lr "${LR:-2e-3}" \
  --time-budget "${BUDGET:-430}" --stop-after "${STOP:-445}" --encoder-positions 256 --workers 8 \
  --log-every 20 --probe-every 400 --save-every 100000 --export "$OUT/ckpt" 2>&1 | tr '\r' '\n' | grep -v "Writing model" | awk '!/it\/s|s\/it/ || NR % 30 == 1' 
cp /tmp/run/train.log "$OUT/train.log"; cp /tmp/run/loss_curve.png "$OUT/loss_curve.png" || true
rm -f "$OUT/ckpt/generation_config.json" "$OUT/ckpt/tokenizer.json" "$OUT/ckpt/tokenizer_config.json" "$OUT/ckpt/special_tokens_map.json"
if [ -f kernels/bench_sampling.py ]; then timeout 60 python3 kernels/bench_sampling.py --out "$OUT/kernel_bench.json" || true; fi
ls -la "$OUT" "$OUT/ckpt"
