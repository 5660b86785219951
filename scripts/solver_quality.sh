#!/usr/bin/env bash
# solver_quality.sh -- held-out quality of the ODE solvers at equal model evaluations: the base
# model sampled by `evaluate` (67 held-out prompts x SAMPLES seeds, guidance 3) with Euler and with
# DPM-Solver++(2M) at each step count, scored by the strict and partial rewards and the judge.
# Writes DIR/solvers.tsv (reports that exist are reused).
#
#   scripts/solver_quality.sh BIN DIR [POLICY] [SAMPLES]
set -euo pipefail
BIN=$1 DIR=$2 POLICY=${3:-models/shapes-base.safetensors} SAMPLES=${4:-8}
mkdir -p "$DIR"
[ -f "$DIR/heldout.txt" ] || "$BIN/treerpo-shapes" prompts --split heldout -o "$DIR/heldout.txt" --force
printf 'solver\tsteps\tstrict\tpartial\tcount_match\tforeground\tdiversity\n' >"$DIR/solvers.tsv.tmp"
for run in euler:20 euler:10 dpm2m:10 euler:7 dpm2m:7 euler:5 dpm2m:5; do
  IFS=: read -r solver steps <<<"$run"
  report=$DIR/$solver-$steps.json
  [ -f "$report" ] || "$BIN/evaluate" --policy "$POLICY" --prompts "$DIR/heldout.txt" --samples "$SAMPLES" \
    --steps "$steps" --ode-solver "$solver" --guidance 3 --threads 1 --grid "$DIR/$solver-$steps.png" \
    --report "$report" --force -q >/dev/null
  /usr/bin/python3 "$(dirname "$0")/eval_columns.py" "$report" "$solver" "$steps" >>"$DIR/solvers.tsv.tmp"
done
mv "$DIR/solvers.tsv.tmp" "$DIR/solvers.tsv"
cat "$DIR/solvers.tsv"
