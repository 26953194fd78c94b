#!/usr/bin/env bash
# Second, short GPU run: continue from the first run's weights (fresh optimizer, lower LR, annealed) on a 10M-token shard.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/pkgs "$OUT"
ln -sfn "$PWD/model" /tmp/pkgs/diffgem_model
export PYTHONPATH=/tmp/pkgs PYTHONUNBUFFERED=1
python3 -m diffgem_model.train.train --run /tmp/run --init model/runs/gpu1/ship --split train10m --batch-size 256 --lr "${LR:-8e-4}" \
  --time-budget "${BUDGET:-170}" --stop-after "${STOP:-180}" --encoder-positions 256 --workers 8 \
  --log-every 20 --probe-every 200 --save-every 100000 --export "$OUT/ckpt" 2>&1 | tr '\r' '\n' | grep -v "Writing model" | awk '!/it\/s|s\/it/ || NR % 30 == 1'
cp /tmp/run/train.log "$OUT/train.log"; cp /tmp/run/loss_curve.png "$OUT/loss_curve.png" || true
rm -f "$OUT/ckpt/generation_config.json" "$OUT/ckpt/tokenizer.json" "$OUT/ckpt/tokenizer_config.json"
ls -la "$OUT" "$OUT/ckpt"
