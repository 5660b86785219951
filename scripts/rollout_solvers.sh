#!/usr/bin/env bash
# rollout_solvers.sh -- what the ODE solver and stride of the trunk and suffix do to a tree
# rollout: the default tree (T = 10, binary depth 4 from step 0, guidance 3, seed 1) of POLICY on
# the 67 held-out prompts, its leaves scored by the strict and partial shapes rewards, for Euler
# and DPM-Solver++(2M) at ODE strides 1, 2 and 3. With the window at step 0 every configuration
# shares the window's states and noise, so the leaves differ only by the suffix solver.
# Writes DIR/rollout-solvers.tsv.
#
#   scripts/rollout_solvers.sh BIN DIR [POLICY] [THREADS]
set -euo pipefail
BIN=$1 DIR=$2 POLICY=${3:-models/shapes-base.safetensors} THREADS=${4:-1}
mkdir -p "$DIR"
[ -f "$DIR/heldout.txt" ] || "$BIN/treerpo-shapes" prompts --split heldout -o "$DIR/heldout.txt" --force
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
printf 'solver\tstride\tnfe_per_prompt\tsample_seconds\tstrict\tpartial\n' >"$DIR/rollout-solvers.tsv.tmp"
for run in euler:1 dpm2m:1 euler:2 dpm2m:2 euler:3 dpm2m:3; do
  IFS=: read -r solver stride <<<"$run"
  r=$("$BIN/tree-rollout" --policy "$POLICY" --prompts "$DIR/heldout.txt" --guidance 3 --seed 1 --threads "$THREADS" \
    --ode-solver "$solver" --ode-stride "$stride" -o "$DIR/r-$solver-$stride.h5" --force -q --json)
  s=$("$BIN/score" --reward shapes --reward shapes-partial "$DIR/r-$solver-$stride.h5" -o "$DIR/s-$solver-$stride.h5" \
    --force -q --json)
  printf '%s\t%s\t%s\t%.1f\t%.3f\t%.3f\n' "$solver" "$stride" "$(field "d['nfe_per_prompt']" <<<"$r")" \
    "$(field "d['sample_seconds']" <<<"$r")" "$(field "d['mean']['shapes']" <<<"$s")" \
    "$(field "d['mean']['shapes-partial']" <<<"$s")" >>"$DIR/rollout-solvers.tsv.tmp"
  rm -f "$DIR/r-$solver-$stride.h5" "$DIR/s-$solver-$stride.h5"
done
mv "$DIR/rollout-solvers.tsv.tmp" "$DIR/rollout-solvers.tsv"
cat "$DIR/rollout-solvers.tsv"
