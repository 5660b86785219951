#!/usr/bin/env bash
# rollout_memory.sh -- peak memory of tree-rollout against the number of prompts: the default tree
# of the shipped base model on each prompt count of PROMPTS, in waves of WAVE prompts, for each
# build given (to compare two builds side by side in one run). Prints the peak resident memory
# (GNU time's maximum RSS), wall seconds and file size of every run. The output is written wave
# by wave, so the peak should not grow with the prompt count. Run by hand:
#   PROMPTS="64 512" WAVE=64 tests/bench/rollout_memory.sh [BUILD_BIN ...]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PROMPTS=${PROMPTS:-64 512}
WAVE=${WAVE:-64}
[ $# -gt 0 ] || set -- build/bin
bins=()
for b in "$@"; do bins+=("$(cd "$b" && pwd)"); done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shapes=$(for b in "${bins[@]}"; do [ -x "$b/treerpo-shapes" ] && echo "$b/treerpo-shapes"; done | head -1)
"$shapes" prompts --split train -o "$work/all.txt" -q
for p in $PROMPTS; do
  # Repeat the prompt list as needed: the ids are line numbers, so every line is its own prompt.
  while [ "$(wc -l <"$work/all.txt")" -lt "$p" ]; do cat "$work/all.txt" "$work/all.txt" >"$work/x" && mv "$work/x" "$work/all.txt"; done
  head -n "$p" "$work/all.txt" >"$work/p$p.txt"
  for b in "${bins[@]}"; do
    /usr/bin/time -f '%M %e' -o "$work/time" "$b/tree-rollout" --policy "$SRC/models/shapes-base.safetensors" \
      --prompts "$work/p$p.txt" --wave-prompts "$WAVE" --seed 1 -o "$work/r.h5" -f -q
    read -r rss seconds <"$work/time"
    awk -v b="$b" -v p="$p" -v w="$WAVE" -v rss="$rss" -v s="$seconds" -v bytes="$(stat -c %s "$work/r.h5")" 'BEGIN {
      printf "%s: %5d prompts, waves of %d: peak RSS %6.0f MB, %7.1f s, file %6.1f MB\n", b, p, w, rss / 1024, s, bytes / 1048576 }' 
  done
done
