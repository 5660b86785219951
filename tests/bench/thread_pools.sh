#!/usr/bin/env bash
# thread_pools.sh -- the tools' two thread plans side by side on the shipped base model: pools that
# sleep when idle (the default: OMP_WAIT_POLICY=passive and OPENBLAS_THREAD_TIMEOUT=4, set by the
# tools re-executing themselves; OpenBLAS and libtorch both get --threads) against spinning pools
# (OMP_WAIT_POLICY=active in the environment: OpenBLAS --threads, libtorch 1, the plan before).
# Times `tree-rollout` (16 prompts, default tree, guidance 3: model rows/s) and `update` on its
# scored rollout (one process with every thread: edges/s), REPEAT times each, alternating.
#   tests/bench/thread_pools.sh [BUILD_BIN] [REPEAT]
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
REPEAT=${2:-2}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CORES=$(nproc)
BASE=$SRC/models/shapes-base.safetensors
export PATH="$BIN:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
treerpo-shapes prompts --split train -o all.txt -q
head -n 16 all.txt > p.txt
tree-rollout --policy "$BASE" --prompts p.txt --guidance 3 --seed 1 -o r.h5 -q
score --reward shapes r.h5 -o s.h5 -q
advantage s.h5 -o a.h5 -q
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]])" "$1"; }
rate() { /usr/bin/python3 -c "import json,sys; print('%.1f' % [json.loads(l) for l in open(sys.argv[1])][-1]['edges_per_s'])" "$1"; }
printf 'run\tpools\trollout_s\trollout_rows_per_s\tupdate_edges_per_s\n'
for i in $(seq "$REPEAT"); do
  for pools in sleep spin; do
    if [ "$pools" = spin ]; then env=(env OMP_WAIT_POLICY=active); else env=(env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT); fi
    s=$("${env[@]}" tree-rollout --policy "$BASE" --prompts p.txt --guidance 3 --seed 1 --threads "$CORES" \
      -o r2.h5 --force -q --json | field sample_seconds)
    "${env[@]}" update --policy "$BASE" a.h5 --threads "$CORES" --metrics u.jsonl -o u.safetensors -f -q
    # 16 prompts x 111 evaluations, two model rows each under guidance
    printf '%s\t%s\t%.2f\t%.0f\t%s\n' "$i" "$pools" "$s" "$(echo "16 * 111 * 2 / $s" | bc -l)" "$(rate u.jsonl)"
  done
done
