#!/usr/bin/env bash
# base_stage2.sh -- does a shipped base model gain from more SFT? (models/figures/base-stage2.tsv was
# measured on the 1.1 model, learning rate 3e-4 and uniform sigma.) A second stage from its
# weights (the recipe's moving average at step 16000): 20000 more steps of 32 on the same 24000
# renders, cosine from 1e-4 (warmup 200), moving average 0.999, seed 2, as chunks of 2000 that
# resume; each chunk's moving average is evaluated on the 67 held-out prompts x 8 seeds (20
# steps, guidance 3). Writes DIR/stage2.tsv; existing chunks and evaluations are reused, so a
# stopped run continues where it stopped. Stop it with UNTIL (default 20000).
#
#   scripts/base_stage2.sh BIN DIR [UNTIL]     # 1 thread: ~2.7 steps/s, ~2 h for 20000 steps
set -euo pipefail
BIN=$1 DIR=$2 UNTIL=${3:-20000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
[ -f "$DIR/train.h5" ] || "$BIN/treerpo-shapes" dataset --split train --count 24000 --seed 1 -o "$DIR/train.h5" --force
[ -f "$DIR/heldout.txt" ] || "$BIN/treerpo-shapes" prompts --split heldout -o "$DIR/heldout.txt" --force
[ -f "$DIR/sft-0.safetensors" ] || cp "$SRC/models/shapes-base.safetensors" "$DIR/sft-0.safetensors"
sft=("$BIN/update" "$DIR/train.h5" --steps 20000 --batch-size 32 --lr 1e-4 --warmup 200 --ema 0.999 --seed 2 --threads 1)
prev=0
for k in $(seq 2000 2000 "$UNTIL"); do
  [ -f "$DIR/sft-$k.safetensors" ] || "${sft[@]}" --policy "$DIR/sft-$prev.safetensors" --until "$k" \
    --metrics "$DIR/sft-$k.jsonl" -o "$DIR/sft-$k.safetensors" --force -q
  prev=$k
done
printf 'stage2_step\ttotal_step\tstrict\tpartial\tcount_match\tforeground\tdiversity\n' >"$DIR/stage2.tsv"
for k in 0 $(seq 2000 2000 "$UNTIL"); do
  [ -f "$DIR/sft-$k.safetensors" ] || break
  if [ "$k" = 0 ]; then ema=$DIR/sft-0.safetensors; else
    ema=$DIR/ema-$k.safetensors  # --until at the checkpoint's own step trains nothing: the average alone
    [ -f "$ema" ] || "${sft[@]}" --policy "$DIR/sft-$k.safetensors" --until "$k" --weights-only -o "$ema" --force -q
  fi
  [ -f "$DIR/eval-$k.json" ] || "$BIN/evaluate" --policy "$ema" --prompts "$DIR/heldout.txt" --samples 8 --steps 20 \
    --guidance 3 --threads 2 --grid "$DIR/grid-$k.png" --report "$DIR/eval-$k.json" --force -q >/dev/null
  /usr/bin/python3 "$SRC/scripts/eval_columns.py" "$DIR/eval-$k.json" "$k" "$((16000 + k))" >>"$DIR/stage2.tsv"
done
