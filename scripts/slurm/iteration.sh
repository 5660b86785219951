#!/usr/bin/env bash
# iteration.sh -- submits RL iterations to Slurm as dependent jobs: for each iteration a rollout
# array of SHARDS tasks, then merge + score + advantage, then a data-parallel update, each
# starting when the previous one succeeded (afterok).
#   RUN=/scratch/me/run1 PROMPTS=train.txt scripts/slurm/iteration.sh FIRST LAST
# $RUN/ckpt$FIRST.safetensors must exist (copy the base model to ckpt0.safetensors). Set BIN to
# the tools' directory when they are not on PATH, SHARDS (default 2), RANKS (tasks of the
# update, default 2), GUIDANCE, STEPS, SEED; extra sbatch options in SBATCH_OPTS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
first=${1:?first iteration}
last=${2:-$first}
: "${RUN:?RUN: the run directory}" "${PROMPTS:?PROMPTS: the prompt file}"
export RUN PROMPTS SHARDS=${SHARDS:-2}
[ -e "$RUN/ckpt$first.safetensors" ] || { echo "iteration.sh: $RUN/ckpt$first.safetensors is missing" >&2; exit 66; }
dep=()
for ((it = first; it <= last; it++)); do
  export ITER=$it
  a=$(sbatch --parsable ${SBATCH_OPTS:-} "${dep[@]}" --chdir "$RUN" --export ALL --array "0-$((SHARDS - 1))" \
      "$here/rollout-array.sbatch")
  m=$(sbatch --parsable ${SBATCH_OPTS:-} --dependency "afterok:$a" --chdir "$RUN" --export ALL "$here/merge-score.sbatch")
  u=$(sbatch --parsable ${SBATCH_OPTS:-} --dependency "afterok:$m" --chdir "$RUN" --export ALL --ntasks "${RANKS:-2}" \
      "$here/update.sbatch")
  echo "iteration $it: rollout $a, merge+score+advantage $m, update $u"
  dep=(--dependency "afterok:$u")
done
