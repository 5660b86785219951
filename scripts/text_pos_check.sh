#!/usr/bin/env bash
# text_pos_check.sh -- are the weak learned text positions why the model does not read word order?
# From POLICY, two arms of the same continued SFT on renders of the training split (update
# --objective sft, batch 32, lr LR (3e-4) after 50 warmup steps, constant, logit-normal sigma,
# SFT_STEPS (500) steps): "scaled" starts from POLICY with its text_pos multiplied by SCALE (8: row
# norm ~1 -> ~8, the word embeddings' is ~11), "plain" from POLICY unchanged. Each is then put
# through scripts/word_order_probe.sh and the held-out evaluation (67 x 8, 20 steps, guidance 3,
# seed 7). Files are kept in DIR and reused.
#
#   scripts/text_pos_check.sh POLICY DIR
# Prints one line per arm: arm, the probe's four figures (P strict, Q-as-P strict, pixel
# difference same seed, other seed), held-out strict and count match. BIN defaults to build/bin;
# needs /usr/bin/python3 with numpy and h5py. RENDERS (24000) sizes the renders; EVAL_SAMPLES (8),
# SAMPLES (probe, 8), HELDOUT_PROMPTS (file) shrink the evaluations.
set -euo pipefail
POLICY=$(realpath "$1") D=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(realpath "${BIN:-$SRC/build/bin}")  # absolute: the script changes directory
export BIN=$B
LR=${LR:-3e-4} SFT_STEPS=${SFT_STEPS:-500} SCALE=${SCALE:-8} RENDERS=${RENDERS:-24000} EVAL_SAMPLES=${EVAL_SAMPLES:-8}
HELDOUT_PROMPTS=${HELDOUT_PROMPTS:+$(realpath "$HELDOUT_PROMPTS")}
mkdir -p "$D"
cd "$D"
[ -f renders.h5 ] || "$B/treerpo-shapes" dataset --split train --count "$RENDERS" --seed 1 -o renders.h5 -q
if [ ! -f heldout.txt ]; then
  if [ -n "$HELDOUT_PROMPTS" ]; then cp "$HELDOUT_PROMPTS" heldout.txt
  else "$B/treerpo-shapes" prompts --split heldout -o heldout.txt -q; fi
fi
[ -f scaled-init.safetensors ] || /usr/bin/python3 - "$POLICY" "$SCALE" <<'PY'
import json, struct, sys
import numpy as np
src = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', src[:8])[0]
header = json.loads(src[8:8 + n])
if 'text_pos' not in header or header['text_pos']['dtype'] != 'F32':
    sys.exit(f"{sys.argv[1]}: text_pos: missing or not float32 (a built-in model checkpoint was expected)")
a, b = header['text_pos']['data_offsets']
out = bytearray(src)
out[8 + n + a:8 + n + b] = (np.frombuffer(src[8 + n + a:8 + n + b], dtype=np.float32) * float(sys.argv[2])).tobytes()
open('scaled-init.safetensors.tmp', 'wb').write(out)
PY
[ -f scaled-init.safetensors ] || mv scaled-init.safetensors.tmp scaled-init.safetensors
for arm in scaled plain; do
  init=$POLICY
  [ "$arm" = scaled ] && init=scaled-init.safetensors
  [ -f "$arm.safetensors" ] || "$B/update" renders.h5 --objective sft --policy "$init" --steps "$SFT_STEPS" --batch-size 32 \
    --lr "$LR" --warmup 50 --lr-schedule constant --timestep-sampling logit-normal --seed 1 --threads 2 \
    --metrics "$arm.jsonl" -o "$arm.safetensors" -f -q
  [ -s "$arm.probe" ] || "$SRC/scripts/word_order_probe.sh" "$arm.safetensors" "probe-$arm" >"$arm.probe"
  [ -f "$arm.eval.json" ] || "$B/evaluate" --policy "$arm.safetensors" --prompts heldout.txt --samples "$EVAL_SAMPLES" \
    --steps 20 --guidance 3 --seed 7 --report "$arm.eval.json" --no-progress -q -f >/dev/null
  echo "$arm $(cat "$arm.probe") $(/usr/bin/python3 -c "import json, sys; p = json.load(open(sys.argv[1]))['policy']
print(f\"{p['metrics']['shapes']['mean']:.3f} {p['judge']['count_match']['mean']:.3f}\")" "$arm.eval.json")"
done
