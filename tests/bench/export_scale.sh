#!/usr/bin/env bash
# export_scale.sh BIN DIR [THREADS] -- the exported SD3-style policy at SD3-like sizes on this
# machine: 16-channel latents of 256 px images ([16, 32, 32], 256 image tokens), SD3's text
# embeddings [333, 4096] and pooled [2048], a transformer scaled down to width 256 and 4 joint
# blocks (SD3 medium: 1536 and 24) so that it runs on 2 cores. Prints rollout and update
# throughput, file size per prompt with float32 and float16 latents, and peak memory (README).
# Two of the six prompts (--shard 0/3): about 10 minutes on 2 cores.
set -euo pipefail
BIN=${1:?BIN}; DIR=${2:?DIR}; THREADS=${3:-2}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
mkdir -p "$DIR" && cd "$DIR"
[ -f m/policy.pt ] || $PY "$SRC/schemas/export_sd3_example.py" m --size 32 --dim 256 --depth 4 --heads 4 \
  --text-tokens 333 --text-dim 4096 --pooled-dim 2048 >export.json
cat export.json
peak() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%.2f GiB", $1 / 1048576}'; }
for dt in float32 float16; do
  /usr/bin/time -v "$BIN/tree-rollout" --policy m/policy.pt --prompts m/prompts.h5 --schedule sd3 --steps 10 \
    --guidance 4.5 --seed 1 --latent-dtype $dt --threads "$THREADS" --shard 0/3 -o r-$dt.h5 --force -q --json \
    >r-$dt.json 2>time-r-$dt.txt
  $PY - "$dt" "$(peak time-r-$dt.txt)" <<'PY'
import json, os, sys
dt, peak = sys.argv[1], sys.argv[2]
j = json.load(open(f"r-{dt}.json"))
P = j['prompts']
size = os.path.getsize(f"r-{dt}.h5")
print(f"rollout latents {dt}: {P} prompts, {j['leaves']} leaves, NFE {j['nfe']} in {j['seconds']:.1f} s "
      f"({2 * j['nfe'] / j['seconds']:.2f} model rows/s with guidance), {size / P / 2**20:.2f} MiB per prompt, peak {peak}")
PY
done
"$BIN/score" --reward brightness --decoder m/decoder.pt r-float32.h5 -o s.h5 --force -q
"$BIN/advantage" --method tree s.h5 -o a.h5 --force -q
/usr/bin/time -v "$BIN/update" --policy m/policy.pt a.h5 --trainable lora_ --threads "$THREADS" --metrics m.jsonl \
  -o p2.pt --force -q 2>time-u.txt
$PY - "$(peak time-u.txt)" <<'PY'
import json, sys
j = [json.loads(l) for l in open("m.jsonl")][-1]
print(f"update --trainable lora_: {j['edges']} edges in {j['seconds']:.1f} s ({j['edges_per_s']:.2f} edges/s), "
      f"replay |rho - 1| {j['replay_max_ratio_dev']:.2g}, peak {sys.argv[1]}")
PY
