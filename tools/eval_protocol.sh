#!/usr/bin/env bash
# Evaluation protocol v2: every suite × profile for one policy, 50 seeded trials each (bm-eval), then one table.
#   tools/eval_protocol.sh expert                       # the Stage-1 expert + command law, profiles expert/paper/off
#   tools/eval_protocol.sh diffusion:assets/planner-small-v2 expert   # the planner, expert profile only (onnx)
#   AGENT='{"guidance_scale": 0}' TAG=unguided tools/eval_protocol.sh diffusion:assets/planner-small-v3 expert
# Env: TRIALS (50), WORKERS (2), OUT (outputs/eval-protocol), SUITES (the five below), AGENT (--agent JSON),
# TAG (a name for the row set, default from the policy), EXTRA (more bm-eval arguments, e.g.
# '--runtime async --inference-latency-ms 100 100' or '--supervisor'). Results that exist are kept (rerun = resume).
set -euo pipefail
policy=${1:?usage: tools/eval_protocol.sh POLICY [PROFILE...]}
shift
profiles=("${@:-expert paper off}")
read -r -a profiles <<< "${profiles[*]}"
trials=${TRIALS:-50}
workers=${WORKERS:-2}
out=${OUT:-outputs/eval-protocol}
suites=(${SUITES:-walk-perturb joystick-4dir joystick-8dir waypoint obstacle-forest})
tag=${TAG:-$(echo "$policy" | tr ':/' '__')}
extra=()
[[ $policy == diffusion:* ]] && extra=(--backend onnx)
[[ -n ${AGENT:-} ]] && extra+=(--agent "$AGENT")
[[ -n ${EXTRA:-} ]] && read -r -a more <<< "$EXTRA" && extra+=("${more[@]}")
for prof in "${profiles[@]}"; do
  for s in "${suites[@]}"; do
    dir="$out/$tag/$prof/$s"
    if [[ -f $dir/eval.json ]]; then echo "keep $dir"; continue; fi
    nice -n 5 bm-eval --suite "$s" --policy "$policy" --profile "$prof" --trials "$trials" --workers "$workers" \
      --out "$dir" --no-progress "${extra[@]}" > /dev/null
    echo "done $dir"
  done
done
bm-eval-table "$out"/*/*/*/eval.json --out "$out/table.md" > /dev/null
echo "wrote $out/table.md"
