#!/usr/bin/env bash
# base_causes.sh -- why the pre-1.1 base model painted 4x4 patches: each candidate cause
# switched back to the old setting alone, on the new recipe's schedule (update --steps 16000
# --until STEPS, same seed and EMA), and compared with the new recipe's own checkpoint at STEPS.
# Figures: the denoising probe (MSE of x0_hat on 64 held-out renders at sigma 0.3/0.6/0.9) and
# the held-out evaluation (67 prompts x 2 seeds, 20 steps, guidance 3: strict reward and the
# judge's component-count match). Writes DIR/causes.tsv; runs that exist are reused.
#
#   scripts/base_causes.sh BIN DIR [STEPS]    # DIR holds the recipe's base/ (make base-model OUT=..)
set -euo pipefail
BIN=$1 DIR=$2 STEPS=${3:-2000}
B=$DIR/base C=$DIR/causes
mkdir -p "$C"
sft() { "$BIN/update" "$1" --steps 16000 --batch-size 32 --lr 3e-4 --warmup 200 --ema 0.999 --seed 1 --threads 1 \
          --until "$STEPS" --policy "$2" -o "$3" --force -q; }
[ -f "$C/heldout.txt" ] || "$BIN/treerpo-shapes" prompts --split heldout -o "$C/heldout.txt" --force
[ -f "$C/data-2400.h5" ] || "$BIN/treerpo-shapes" dataset --split train --count 2400 --seed 1 -o "$C/data-2400.h5" --force
[ -f "$C/init-learned.safetensors" ] || "$BIN/treerpo-model" init --seed 1 --pos-embed learned -o "$C/init-learned.safetensors" --force
[ -f "$C/init-noconv.safetensors" ] || "$BIN/treerpo-model" init --seed 1 --out-conv 0 -o "$C/init-noconv.safetensors" --force
[ -f "$C/init-old.safetensors" ] || "$BIN/treerpo-model" init --seed 1 --pos-embed learned --out-conv 0 -o "$C/init-old.safetensors" --force
[ -f "$C/learned.safetensors" ] || sft "$B/train.h5" "$C/init-learned.safetensors" "$C/learned.safetensors"
[ -f "$C/noconv.safetensors" ] || sft "$B/train.h5" "$C/init-noconv.safetensors" "$C/noconv.safetensors"
[ -f "$C/data2400.safetensors" ] || sft "$C/data-2400.h5" "$B/sft-0.safetensors" "$C/data2400.safetensors"
[ -f "$C/old.safetensors" ] || sft "$C/data-2400.h5" "$C/init-old.safetensors" "$C/old.safetensors"
row() {  # name checkpoint
  local p
  p=$("$BIN/treerpo-model" probe --policy "$2" --count 64 --json | /usr/bin/python3 -c \
      "import json,sys; print(' '.join('%.4f' % r['mse'] for r in json.load(sys.stdin)['probe']))")
  [ -f "$C/$1-eval.json" ] || "$BIN/evaluate" --policy "$2" --prompts "$C/heldout.txt" --samples 2 --steps 20 \
      --guidance 3 --threads 1 --grid "$C/$1-grid.png" --report "$C/$1-eval.json" --force -q >/dev/null
  /usr/bin/python3 - "$1" "$C/$1-eval.json" "$p" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))['policy']
print('\t'.join([sys.argv[1], *sys.argv[3].split(), '%.3f' % r['metrics']['shapes']['mean'],
                 '%.3f' % r['judge']['count_match']['mean']]))
PY
}
{
  printf 'run\tmse@0.3\tmse@0.6\tmse@0.9\tstrict\tcount_match\n'
  row new "$B/sft-$STEPS.safetensors"
  row learned-pos "$C/learned.safetensors"
  row no-out-conv "$C/noconv.safetensors"
  row data-2400 "$C/data2400.safetensors"
  row old-all-three "$C/old.safetensors"
  [ -f "$B/sft-16000.safetensors" ] && row new-16000-live "$B/sft-16000.safetensors"
  [ -f "$DIR/shapes-base.safetensors" ] && row new-16000-ema "$DIR/shapes-base.safetensors"
} > "$C/causes.tsv.tmp"
mv "$C/causes.tsv.tmp" "$C/causes.tsv"
cat "$C/causes.tsv"
