#!/usr/bin/env bash
# python_baseline.sh -- `tree-rollout` against the same Flow-GRPO loop in plain PyTorch on the same
# model (tests/bench/torch_port.py, Debian's /usr/bin/python3 and python3-torch), side by side:
# 16 prompts x 16 leaves, T = 10, guidance 3, SDE at every step (--mode independent), and the
# tree and window samplers for scale. Model rows/s and leaves/s of the fastest of REPEAT runs.
# The port is first checked against the C++ model's stored velocities (max |difference|).
#   tests/bench/python_baseline.sh [BUILD_BIN] [REPEAT]
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
REPEAT=${2:-2}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BASE=$SRC/models/shapes-base.safetensors
PORT=$SRC/tests/bench/torch_port.py
export PATH="$BIN:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
treerpo-shapes prompts --split train -o all.txt -q
head -n 16 all.txt > p.txt
head -n 2 all.txt > check.txt
tree-rollout --policy "$BASE" --prompts check.txt --velocity --guidance 1 --zstd-level 0 -o check.h5 -q
echo "port check: $(/usr/bin/python3 "$PORT" check --policy "$BASE" --rollout check.h5)"
best() { /usr/bin/python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
printf 'sampler\tnfe_per_prompt\tseconds\tmodel_rows_per_s\tleaves_per_s\n'
for mode in independent window tree; do
  times=()
  for _ in $(seq "$REPEAT"); do
    out=$(tree-rollout --policy "$BASE" --prompts p.txt --mode "$mode" --guidance 3 --seed 1 -o r.h5 --force -q --json)
    times+=("$(/usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['sample_seconds'])" <<<"$out")")
    nfe=$(/usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nfe_per_prompt'])" <<<"$out")
  done
  s=$(best "${times[@]}")
  printf 'tree-rollout %s\t%s\t%.2f\t%.0f\t%.1f\n' "$mode" "$nfe" "$s" "$(echo "16 * $nfe * 2 / $s" | bc -l)" \
    "$(echo "256 / $s" | bc -l)"
done
for tuned in "" --tuned; do
  out=$(/usr/bin/python3 "$PORT" bench --policy "$BASE" --prompts p.txt --leaves 16 --steps 10 --guidance 3 \
    --repeat "$REPEAT" $tuned)
  /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin)
print('python flow-grpo%s\t160\t%.2f\t%.0f\t%.1f' % (' tuned' if d['tuned'] else '', d['seconds'], d['model_rows_per_s'],
      d['leaves_per_s']))
print('  (torch %s, %s BLAS, torch threads %d, OpenBLAS threads %s, OMP wait %s, heap kept %s)' % (d['torch'], d['blas'],
      d['torch_threads'], d['openblas_threads'], d['omp_wait_policy'], d['mallopt_heap_kept']), file=sys.stderr)" <<<"$out"
done
