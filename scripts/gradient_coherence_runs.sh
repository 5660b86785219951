#!/usr/bin/env bash
# gradient_coherence_runs.sh -- the table of models/figures/gradient-coherence.tsv: pairs of first
# update steps (scripts/gradient_coherence.sh) for the loop's reward, a null reward that carries
# no signal (scripts/null_reward_process.py) and brightness, on the same prompts and on disjoint
# ones (A against B), at 16, 64 and 192 colour-attribute prompts and at 64 leaves per prompt;
# Flow-GRPO's independent sampler (16 SDE trajectories per prompt); shapes-partial alone; the
# loop's reward and brightness with block noise (--noise-block).
# Steps are kept in DIR and reused: a rerun only recomputes the rows (a cold run is about an hour
# on 2 cores). The prompt files are the colour-attribute prompts ("a red X and a blue Y") of the
# shuffled training split, in order: A16 = the first 16, B16 the next 16, A64 the first 64, B64
# the next 64, attr192 all 192.
#
#   scripts/gradient_coherence_runs.sh out/gc models/figures/gradient-coherence.tsv
set -euo pipefail
D=$1 TABLE=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:-$SRC/build/bin}
G=$SRC/scripts/gradient_coherence.sh
mkdir -p "$D"
"$B/treerpo-shapes" prompts --split train --shuffle --seed 1 -o "$D/train-shuffled.txt" --force
grep -E '^an? (red|green|blue|yellow|purple) [a-z]+ and an? (red|green|blue|yellow|purple) [a-z]+$' \
  "$D/train-shuffled.txt" >"$D/attr192.txt"
sed -n 1,16p "$D/attr192.txt" >"$D/attrA16.txt"
sed -n 17,32p "$D/attr192.txt" >"$D/attrB16.txt"
sed -n 1,64p "$D/attr192.txt" >"$D/attrA64.txt"
sed -n 65,128p "$D/attr192.txt" >"$D/attrB64.txt"
LOOP="--reward shapes --reward shapes-partial:0.5"
NULL="--reward-process $SRC/scripts/null_reward_process.py"
BRIGHT="--reward brightness"
row() {  # row REWARD_NAME REWARDS ROLLOUT_ARGS PAIR_LABEL GRADIENT_COHERENCE_ARGS...
  local name=$1 rewards=$2 rollout=$3 pair=$4
  shift 4
  printf '%s\t%s\t%s\t' "$name" "${rollout:-isotropic}" "$pair"
  REWARDS=$rewards ROLLOUT_ARGS=$rollout BIN=$B "$G" "$D" "$@" | cut -f 2- | sed "s#$D/##g"
}
{
  printf 'reward\trollout\tseeds\tprompts\tsign_correlation\tcosine\ttext_stream\timage_stream\n'
  for p in "1 2" "3 4" "1 3" "2 4"; do
    # shellcheck disable=SC2086  # p is two seeds
    row loop "$LOOP" "" "s${p/ /-s}" loop "$D/attrA16.txt" $p
  done
  for p in "1 2" "3 4" "1 3"; do
    # shellcheck disable=SC2086
    row loop "$LOOP" "" "s${p/ /-s}" loop "$D/attrB16.txt" $p
  done
  row loop "$LOOP" "" s1-s2 loop "$D/attrA64.txt" 1 2
  row loop "$LOOP" "" s1-s2 loop "$D/attr192.txt" 1 2
  row loop "$LOOP" "--branching 4,4,2,2" s1-s2 leaves64 "$D/attrA16.txt" 1 2
  for p in "1 2" "2 1" "3 4" "1 3" "2 4"; do
    # shellcheck disable=SC2086
    row loop "$LOOP" "" "s${p/ /-s}" loop "$D/attrA16.txt" $p "$D/attrB16.txt"
  done
  row loop "$LOOP" "" s1-s2 loop "$D/attrA64.txt" 1 2 "$D/attrB64.txt"
  row loop "$LOOP" "--branching 4,4,2,2" s1-s2 leaves64 "$D/attrA16.txt" 1 2 "$D/attrB16.txt"
  row null "$NULL" "" s1-s2 null "$D/attrA16.txt" 1 2
  row null "$NULL" "" s1-s2 null "$D/attrB16.txt" 1 2
  row null "$NULL" "" s1-s2 null "$D/attrA64.txt" 1 2
  row null "$NULL" "" s1-s2 null "$D/attrA16.txt" 1 2 "$D/attrB16.txt"
  row null "$NULL" "" s2-s1 null "$D/attrA16.txt" 2 1 "$D/attrB16.txt"
  UPDATE_ARGS= row loop "$LOOP" "--mode independent --leaves 16" s1-s2 indep "$D/attrA16.txt" 1 2
  UPDATE_ARGS= row loop "$LOOP" "--mode independent --leaves 16" s1-s2 indep "$D/attrA16.txt" 1 2 "$D/attrB16.txt"
  row shapes-partial "--reward shapes-partial" "" s1-s2 partial "$D/attrA16.txt" 1 2
  row loop "$LOOP" "--noise-block 4" s1-s2 b4 "$D/attrA16.txt" 1 2
  row loop "$LOOP" "--noise-block 4" s1-s2 b4 "$D/attrA64.txt" 1 2
  row loop "$LOOP" "--noise-block 8" s1-s2 b8 "$D/attrA16.txt" 1 2
  row brightness "$BRIGHT" "--noise-block 4" s1-s2 bright-b4 "$D/attrA16.txt" 1 2
  row brightness "$BRIGHT" "" s1-s2 bright "$D/attrA16.txt" 1 2
  row brightness "$BRIGHT" "" s1-s2 bright "$D/attrA64.txt" 1 2
  row brightness "$BRIGHT" "" s1-s2 bright "$D/attrA16.txt" 1 2 "$D/attrB16.txt"
  row brightness "$BRIGHT" "" s1-s2 bright "$D/attrA64.txt" 1 2 "$D/attrB64.txt"
} >"$TABLE.part"
mv "$TABLE.part" "$TABLE"
