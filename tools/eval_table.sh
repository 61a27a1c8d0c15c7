#!/usr/bin/env bash
# The evaluation table of the README: every bm-eval suite × policy (randomization + 0–100 ms latency, the suites'
# defaults), then one markdown table. Usage: tools/eval_table.sh [PLANNER_CKPT] [TRIALS] [OUT]
# Trials run in 2 worker processes; on a 2-core machine the full table with 50 trials takes about an hour.
set -euo pipefail
CKPT=${1:-assets/planner-small-v2}
N=${2:-50}
OUT=${3:-outputs/eval-table}
GUIDED='{}'  # the checkpoint's shipped agent_config.json
UNGUIDED='{"guidance_scale": 0}'
mkdir -p "$OUT"
for suite in walk-perturb joystick-4dir waypoint obstacle-forest; do
  bm-eval --suite "$suite" --trials "$N" --workers 2 --out "$OUT/expert-$suite" --no-progress
  bm-eval --suite "$suite" --trials "$N" --workers 2 --policy "diffusion:$CKPT" --agent "$GUIDED" --backend onnx \
    --out "$OUT/guided-$suite" --no-progress
done
bm-eval --suite walk-perturb --trials "$N" --workers 2 --policy "diffusion:$CKPT" --agent "$UNGUIDED" --backend onnx \
  --out "$OUT/unguided-walk-perturb" --no-progress
bm-eval-table "$OUT"/*/eval.json --out "$OUT/table.md"
