#!/usr/bin/env bash
# launch-local.sh -- a torchrun-style launch on one machine: runs N copies of a command with
# RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, as
# `torchrun --standalone --nproc-per-node N` does, and exits with the first non-zero status of
# any rank (a failed rank makes the others fail too: `update` notices a lost peer).
#   scripts/launch-local.sh 2 update --threads 1 --policy ckpt.safetensors it0.adv.h5 -o next.safetensors
# Give each rank its share of the cores (--threads); MASTER_PORT defaults to a free port.
set -u
if [ $# -lt 2 ] || ! [ "$1" -ge 1 ] 2>/dev/null; then
  echo "usage: launch-local.sh N COMMAND [ARGS...]" >&2
  exit 64
fi
n=$1
shift
[ "$n" = 1 ] && exec "$@"
port=${MASTER_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
pids=()
for ((r = 0; r < n; r++)); do
  RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n LOCAL_WORLD_SIZE=$n MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} MASTER_PORT=$port "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid"
  rc=$?
  [ "$status" = 0 ] && status=$rc
done
exit "$status"
