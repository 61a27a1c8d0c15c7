#!/usr/bin/env bash
# One prepared GPU session: GPU checks, then data collection on every core, then a time-boxed training run on the GPU,
# with everything worth keeping packed into $OUT (at most a few files). Each stage logs to $OUT/session.log and a
# failing stage does not stop the next one. Settings (environment variables, defaults in brackets):
#   OUT [outputs/gpu_session]   where results go; DATA [data/gpu-session], RUN [runs/gpu-session]: data set and run
#   CHECK [1]                   run tools/gpu_check.py (latency, TensorRT where installed, training samples/s, bm-bench)
#   HOURS [6]  WORKERS [nproc-1]  SEED [7]   bm-collect target (usable hours), processes, seed
#   COLLECT_S [150]             hard cap on collection wall time (a killed run keeps its finished shards)
#   CONFIG [assets/planner-small-v2/recipe/cmd-gpu2.yaml]  INIT [assets/planner-small-v3]  MINUTES [5]  STEPS [20000]  BATCH [512]  WORKERS_DL [6]
#   DEVICE [cuda]   COLLECT [1]  TRAIN [1]: run those stages (split a session into calls; DATA/RUN persist between them)
# Example (CPU smoke test): CHECK=0 HOURS=0.01 MINUTES=0.2 STEPS=20 BATCH=16 DEVICE=cpu bash tools/gpu_session.sh
set -u
OUT=${OUT:-outputs/gpu_session}
mkdir -p "$OUT"
LOG="$OUT/session.log"
PY=${PY:-python3}
DATA=${DATA:-data/gpu-session}  # relative to the repository root, like OUT (data/ and runs/ are git-ignored)
RUN=${RUN:-runs/gpu-session}
WORKERS=${WORKERS:-$(($(nproc) - 1))}
stamp() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }

stamp "start: $(nproc) CPUs; $($PY -c 'import torch;print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))' 2>&1)"
if [ "${CHECK:-1}" = 1 ]; then
  stamp "gpu_check"
  timeout "${CHECK_S:-240}" $PY tools/gpu_check.py --out "$OUT" --repeats "${REPEATS:-15}" >>"$LOG" 2>&1 || stamp "gpu_check rc=$?"
fi

if [ "${COLLECT:-1}" = 1 ]; then
  stamp "collect ${HOURS:-6} h with $WORKERS workers (cap ${COLLECT_S:-150} s)"
  timeout "${COLLECT_S:-150}" $PY -m bm_planner.data.collector --out "$DATA" --hours "${HOURS:-6}" --workers "$WORKERS" \
    --seed "${SEED:-7}" --latency-ms 0 20 --friction 0.5 1.25 --no-progress >>"$LOG" 2>&1 || stamp "collect rc=$?"
  cp "$DATA/manifest.json" "$OUT/data_manifest.json" 2>/dev/null
fi
if [ "${TRAIN:-1}" != 1 ]; then
  :
elif [ ! -f "$DATA/manifest.json" ] || [ "$(ls "$DATA"/shard-*.npz 2>/dev/null | wc -l)" = 0 ]; then
  stamp "no data set: skipping training"
else
  # a capped run may stop between shards: rerunning with the hours it reached finalizes the manifest
  $PY - "$DATA" >>"$LOG" 2>&1 <<'EOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/manifest.json"))
print("data set:", {k: m["counts"][k] for k in ("shards", "episodes", "falls", "hours")}, "complete:", m["complete"])
EOF
  stamp "train ${CONFIG:-assets/planner-small-v2/recipe/cmd-gpu2.yaml} for <= ${MINUTES:-5} min"
  $PY -m bm_planner.training.cli --config "${CONFIG:-assets/planner-small-v2/recipe/cmd-gpu2.yaml}" --data "$DATA" --out "$RUN" \
    --init-from "${INIT:-assets/planner-small-v3}" --init-normalizer --steps "${STEPS:-20000}" --batch-size "${BATCH:-512}" \
    --num-workers "${WORKERS_DL:-6}" --device "${DEVICE:-cuda}" --max-minutes "${MINUTES:-5}" --no-progress \
    >>"$LOG" 2>&1 || stamp "train rc=$?"
  # the newest checkpoint's weights only (no optimizer state), the run's metrics and configs: one archive
  CK=$(ls -d "$RUN"/checkpoints/step_* 2>/dev/null | sort | tail -1)
  if [ -n "$CK" ]; then
    tar -czf "$OUT/run.tar.gz" -C "$RUN" --exclude=train_state.pt "checkpoints/$(basename "$CK")" metrics.jsonl \
      run_config.json state_layout.json && stamp "packed $(basename "$CK") ($(du -h "$OUT/run.tar.gz" | cut -f1))"
  fi
fi
stamp "done"
