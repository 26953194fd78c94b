#!/usr/bin/env bash
# Round 2 on one lent GPU (one command under the 600 s limit; ~12 minutes of H200 device time with the start), training from the shipped weights (model/embedded).
#
# Here (CPU), once:   bash model/train/gpu_round2.sh prep        # -> model/data/gpu (<= 64 MiB: one train shard,
#                                                                #    the validation shard, validation holes)
# On the GPU:         run(command="bash model/train/gpu_round2.sh", carry=["model/data/gpu"], timeout_s=600)
# Back here:          bash model/train/gpu_round2.sh score <files_at>   # scores the validation decode on CPU,
#                                                                       # appends the training log
# Phases on the GPU (budgets in seconds via env): 1. train-bench, eager vs torch.compile (tokens/s, MFU);
# 2. the objective A/B — uniform-state vs masked noise from scratch, eager, at equal steps (AB_STEPS), judged by the
# validation probe's exact match, not loss; 3. the main run: from the shipped weights, uniform noise (what the
# engine samples today), WSD schedule, best-by-validation export; 4. decode the validation holes with the
# project's Engine on the GPU (scoring needs tree-sitter and runs back here).
set -uo pipefail
SHARD=${SHARD:-train_00}
if [ "${1:-}" = "prep" ]; then
  set -e
  PY=.venv/bin/python
  mkdir -p model/data/gpu
  [ -f "model/data/${SHARD}_tokens.npy" ] || $PY -m diffgem_model.train.examples --split train --shard-tokens 24000000
  [ -f model/data/validation_tokens.npy ] || $PY -m diffgem_model.train.examples --split validation
  for s in "$SHARD" validation; do for k in tokens starts weights; do
    cp "model/data/${s}_${k}.npy" model/data/gpu/; done; done
  # Half quotas: the same holes as model/embedded/eval_round2_validation.json, so the scores compare directly.
  $PY -m diffgem_model.train.evaluate --split validation --scale 0.5 --save-holes model/data/gpu/holes_validation.jsonl
  du -sh model/data/gpu
  exit 0
fi
if [ "${1:-}" = "score" ]; then
  set -e
  AT=${2:?usage: gpu_round2.sh score <folder the GPU files came back to>}
  # Scoring reads only the tokenizer, canvas length and sampler settings, which the new weights share with
  # model/embedded (the GPU side drops the tokenizer files from $OUT/ckpt).
  .venv/bin/python -m diffgem_model.train.evaluate --split validation --checkpoint model/embedded \
    --holes model/data/gpu/holes_validation.jsonl --preds "$AT/samples.jsonl" --out model/runs/eval/gpu_validation
  echo "compare with model/embedded/eval_round2_validation.json; ship only if better, then: make eval (test, once)"
  cat "$AT"/training_log.jsonl >> model/train/training_log.jsonl
  exit 0
fi

OUT=${OUT:-/tmp/out}
mkdir -p /tmp/pkgs "$OUT" model/data
ln -sfn "$PWD/model" /tmp/pkgs/diffgem_model
ln -sf "$PWD"/model/data/gpu/*.npy model/data/
export PYTHONPATH=/tmp/pkgs PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=python3
T0=$(date +%s)
stamp() { echo "== $1 at +$(( $(date +%s) - T0 ))s"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
COMMON=(--split "$SHARD" --encoder-positions 256 --workers "${WORKERS:-8}" --log-every 20 --save-every 100000
        --probe-size 256 --log "$OUT/training_log.jsonl")

stamp bench
for c in "" "--compile"; do
  timeout 45 $PY -m diffgem_model.train.bench --batch-size "${BATCH:-256}" $c 2>&1 | grep '^{' | tee -a "$OUT/bench.jsonl"
done
COMPILE=$($PY - "$OUT/bench.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
best = max(rows, key=lambda r: r["tokens_per_s"], default={"compile": False})
print("--compile" if best["compile"] else "")
EOF
)

stamp "objective A/B (from scratch, equal steps)"
for noise in uniform masked; do
  timeout "${AB_TIMEOUT:-70}" $PY -m diffgem_model.train.train --run "/tmp/ab_$noise" --preset embedded --noise "$noise" \
    --batch-size "${BATCH:-256}" --lr 2e-3 --max-steps "${AB_STEPS:-100}" --probe-every 50 "${COMMON[@]}" \
    --note "round 2 A/B: $noise noise from scratch, ${AB_STEPS:-100} steps" 2>&1 | grep -E "final probe|Error|error" | tail -3
  tail -1 "/tmp/ab_$noise/train.log" > "$OUT/ab_$noise.json" 2>/dev/null || true
done

stamp "main run from the shipped weights"
timeout $(( ${MAIN_BUDGET:-150} + 60 )) $PY -m diffgem_model.train.train --run /tmp/main --init model/embedded --noise uniform \
  --batch-size "${BATCH:-256}" --lr "${LR:-8e-4}" --schedule wsd --warmup 0.03 --decay 0.25 \
  --time-budget "${MAIN_BUDGET:-150}" --probe-every 40 --export "$OUT/ckpt" $COMPILE "${COMMON[@]}" \
  --note "round 2 main: shipped weights + round-2 corpus shard $SHARD, WSD" 2>&1 | grep -E "final probe|resumed|initialised|Error" | tail -5
cp /tmp/main/train.log "$OUT/train_main.log" 2>/dev/null; cp /tmp/main/loss_curve.png "$OUT/" 2>/dev/null
rm -f "$OUT"/ckpt/tokenizer.json "$OUT"/ckpt/tokenizer_config.json "$OUT"/ckpt/special_tokens_map.json
cp model/embedded/tokenizer.json model/embedded/tokenizer_config.json model/embedded/generation_config.json /tmp/ 2>/dev/null

stamp "validation decode (Engine on the GPU)"
if [ -d "$OUT/ckpt" ]; then
  mkdir -p /tmp/evalckpt && cp "$OUT"/ckpt/* /tmp/evalckpt/ && cp /tmp/tokenizer.json /tmp/tokenizer_config.json /tmp/generation_config.json /tmp/evalckpt/
  timeout 80 $PY -m diffgem_model.train.evaluate --split validation --checkpoint /tmp/evalckpt \
    --holes model/data/gpu/holes_validation.jsonl --no-score --out /tmp/evalout 2>&1 | tail -2
  cp /tmp/evalout/samples.jsonl "$OUT/" 2>/dev/null
fi
stamp done
ls -la "$OUT" "$OUT/ckpt" 2>/dev/null
