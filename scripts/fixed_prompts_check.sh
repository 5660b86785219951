#!/usr/bin/env bash
# fixed_prompts_check.sh -- can the loop raise the reward on the prompts it trains on? Runs the
# RL loop of Makefile.examples (tree-rollout -> score -> advantage -> update on 2 local ranks, the
# base model, T = 10, guidance 3, seed 1) for ITERS iterations on ONE fixed prompt file, and
# prints each iteration's mean batch reward. Each rollout draws fresh noise (keyed by the
# iteration), so a rise is the policy's, not the prompts'. Reruns reuse finished checkpoints.
#
#   scripts/fixed_prompts_check.sh DIR PROMPTS ITERS LR [UPDATE_OPTION...]
#   REWARDS="--reward brightness" scripts/fixed_prompts_check.sh out/fp-bright attr16.txt 3 3e-4 --lambda 0
#   ROLLOUT_ARGS="--noise 0.4 --noise-growth 0" scripts/fixed_prompts_check.sh out/fp-n04 attr16.txt 7 3e-4 --lambda 0
# REWARDS defaults to the loop's "--reward shapes --reward shapes-partial:0.5"; BIN to build/bin.
set -euo pipefail
D=$1 P=$2 N=$3 LR=$4
shift 4
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:-$SRC/build/bin}
mkdir -p "$D"
[ -e "$D/ckpt0.safetensors" ] || cp "$SRC/models/shapes-base.safetensors" "$D/ckpt0.safetensors"
for k in $(seq 0 $((N - 1))); do
  if [ ! -e "$D/ckpt$((k + 1)).safetensors" ]; then
    # shellcheck disable=SC2086  # ROLLOUT_ARGS and REWARDS are option lists
    "$B/tree-rollout" --policy "$D/ckpt$k.safetensors" --prompts "$P" --iteration "$k" --steps 10 --guidance 3 \
      --seed 1 --threads 2 ${ROLLOUT_ARGS:-} -o "$D/rollout.h5" --force -q
    # shellcheck disable=SC2086
    "$B/score" ${REWARDS:---reward shapes --reward shapes-partial:0.5} "$D/rollout.h5" -o "$D/scored.h5" --force -q \
      --json >"$D/it$k.score.json"
    "$B/advantage" --method tree "$D/scored.h5" -o "$D/adv.h5" --force -q
    "$SRC/scripts/launch-local.sh" 2 "$B/update" --policy "$D/ckpt$k.safetensors" "$D/adv.h5" --lr "$LR" --threads 1 \
      --metrics "$D/it$k.metrics.jsonl" -o "$D/ckpt$((k + 1)).safetensors" --force -q "$@"
  fi
  python3 -c "import json, sys; m = json.load(open(sys.argv[2]))['mean']; print(sys.argv[1], *(f'{n} {v:.4f}' for n, v in m.items()))" \
    "$k" "$D/it$k.score.json"
done
