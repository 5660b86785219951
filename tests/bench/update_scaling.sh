#!/usr/bin/env bash
# update_scaling.sh -- data-parallel scaling of `update` on this machine: the same scored tree
# rollout (16 prompts of the shipped base model, default tree, 480 edges) trained by one process
# with all threads, then by two ranks on loopback (Gloo) splitting the threads, side by side and
# REPEAT times each. Prints edges/s of each run. Run by hand:
#   tests/bench/update_scaling.sh [BUILD_BIN] [REPEAT]
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
REPEAT=${2:-2}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CORES=$(nproc)
export PATH="$BIN:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
treerpo-shapes prompts --split train -o all.txt -q
head -n 16 all.txt > p.txt
tree-rollout --policy "$SRC/models/shapes-base.safetensors" --prompts p.txt --guidance 3 --seed 1 -o r.h5 -q
score --reward shapes r.h5 -o s.h5 -q
advantage s.h5 -o a.h5 -q
rate() { "$(command -v python3)" -c "import json,sys; print('%.1f' % [json.loads(l) for l in open(sys.argv[1])][-1]['edges_per_s'])" "$1"; }
for i in $(seq "$REPEAT"); do
  update --policy "$SRC/models/shapes-base.safetensors" a.h5 --threads "$CORES" --metrics one.jsonl -o one.safetensors -f -q
  port=$((29600 + i))
  half=$(( CORES / 2 > 0 ? CORES / 2 : 1 ))
  RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    update --policy "$SRC/models/shapes-base.safetensors" a.h5 --threads "$half" -o two.safetensors -f -q &
  RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    update --policy "$SRC/models/shapes-base.safetensors" a.h5 --threads "$half" --metrics two.jsonl -o two.safetensors -f -q
  wait
  echo "run $i: 1 process x $CORES threads: $(rate one.jsonl) edges/s; 2 ranks x $half threads: $(rate two.jsonl) edges/s"
done
