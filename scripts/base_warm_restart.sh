#!/usr/bin/env bash
# base_warm_restart.sh -- a second cosine cycle of the base-model recipe from the shipped weights:
# `update` SFT on the recipe's data (24000 pairs, seed 1) for STEPS steps at peak LR (warmup 200,
# logit-normal sigma, moving average 0.999, seed 2), in chunks of 2000 that each resume the last;
# every chunk's moving average evaluated on the 67 held-out prompts x 8 seeds (20 steps,
# guidance 3). Chunks and evaluations that exist are reused. Writes DIR/curve.tsv (columns of
# scripts/eval_columns.py) and DIR/grid-K.png.
#
#   scripts/base_warm_restart.sh BIN DIR [STEPS [LR]]   # measured: STEPS 8000, LR 5e-4, ~70 min at 1 thread with evaluations
set -euo pipefail
BIN=$1 DIR=$2 STEPS=${3:-8000} LR=${4:-5e-4}
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
cd "$DIR"
[ -f train.h5 ] || "$BIN/treerpo-shapes" dataset --split train --count 24000 --seed 1 -o train.h5 --force -q
[ -f heldout.txt ] || "$BIN/treerpo-shapes" prompts --split heldout -o heldout.txt --force -q
SFT=("$BIN/update" train.h5 --steps "$STEPS" --batch-size 32 --lr "$LR" --warmup 200 --ema 0.999 --seed 2 --threads 1
     --timestep-sampling logit-normal)
[ -f sft-0.safetensors ] || cp "$SRC/models/shapes-base.safetensors" sft-0.safetensors
printf 'step\tstrict\tpartial\tcount_match\tforeground\tdiversity\n' >curve.tsv.tmp
for k in $(seq 2000 2000 "$STEPS"); do
  p=$((k - 2000))
  [ -f "sft-$k.safetensors" ] || "${SFT[@]}" --policy "sft-$p.safetensors" --until "$k" --metrics "sft-$k.jsonl" \
    -o "sft-$k.safetensors" --force -q
  [ -f "ema-$k.safetensors" ] || "${SFT[@]}" --policy "sft-$k.safetensors" --until "$k" --weights-only \
    -o "ema-$k.safetensors" --force -q
  [ -f "eval-$k.json" ] || "$BIN/evaluate" --policy "ema-$k.safetensors" --prompts heldout.txt --samples 8 --steps 20 \
    --guidance 3 --threads 1 --grid "grid-$k.png" --report "eval-$k.json" --force -q >/dev/null
  /usr/bin/python3 "$SRC/scripts/eval_columns.py" "eval-$k.json" "$k" >>curve.tsv.tmp
done
mv curve.tsv.tmp curve.tsv
cat curve.tsv
