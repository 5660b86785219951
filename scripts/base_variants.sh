#!/usr/bin/env bash
# base_variants.sh -- recipe variants of the base model side by side, each trained like the
# recipe (update --steps 16000 --batch-size 32 --lr 3e-4 --warmup 200 --ema 0.999 --seed 1,
# 1 thread) up to STEPS and compared on the same figures: the denoising probe (MSE of x0_hat on
# 64 held-out renders at sigma 0.3/0.6/0.9) and the held-out evaluation (67 prompts x 4 seeds,
# 20 steps, guidance 3: strict, partial, and the judge's count match, foreground and diversity).
# A variant is NAME:INIT_ARGS:SFT_ARGS (extra options of treerpo-model init and of update; an
# --lr in SFT_ARGS replaces the recipe's).
# Writes DIR/variants-STEPS.tsv; checkpoints and evaluations that exist are reused, and a variant
# resumes from its latest checkpoint below STEPS (so STEPS 2000, 4000, ... run as chunks).
#
#   scripts/base_variants.sh BIN DIR STEPS VARIANT...
#   scripts/base_variants.sh build/tools out/variants 2000 'velocity::' 'x0:--prediction x0:'
set -euo pipefail
BIN=$1 DIR=$2 STEPS=$3
shift 3
mkdir -p "$DIR"
[ -f "$DIR/train.h5" ] || "$BIN/treerpo-shapes" dataset --split train --count 24000 --seed 1 -o "$DIR/train.h5" --force
[ -f "$DIR/heldout.txt" ] || "$BIN/treerpo-shapes" prompts --split heldout -o "$DIR/heldout.txt" --force
printf 'variant\tsteps\tmse@0.3\tmse@0.6\tmse@0.9\tstrict\tpartial\tcount_match\tforeground\tdiversity\n' \
  >"$DIR/variants-$STEPS.tsv.tmp"
for v in "$@"; do
  IFS=: read -r name init_args sft_args <<<"$v"
  ck=$DIR/$name-$STEPS.safetensors
  case " $sft_args " in *" --lr "*) lr=() ;; *) lr=(--lr 3e-4) ;; esac
  # shellcheck disable=SC2086  # the variant's options are words
  [ -f "$DIR/$name-0.safetensors" ] || "$BIN/treerpo-model" init --seed 1 $init_args -o "$DIR/$name-0.safetensors" --force
  start=0
  for f in "$DIR/$name"-*.safetensors; do
    k=${f##*-}; k=${k%.safetensors}
    [[ $k =~ ^[0-9]+$ ]] && [ "$k" -lt "$STEPS" ] && [ "$k" -gt "$start" ] && start=$k
  done
  # shellcheck disable=SC2086
  [ -f "$ck" ] || "$BIN/update" "$DIR/train.h5" --steps 16000 --batch-size 32 "${lr[@]}" --warmup 200 --ema 0.999 \
    --seed 1 --threads 1 $sft_args --until "$STEPS" --policy "$DIR/$name-$start.safetensors" \
    --metrics "$DIR/$name-$STEPS.jsonl" -o "$ck" --force -q
  probe=$("$BIN/treerpo-model" probe --policy "$ck" --count 64 --json | /usr/bin/python3 -c \
    "import json,sys; print(' '.join('%.4f' % r['mse'] for r in json.load(sys.stdin)['probe']))")
  [ -f "$DIR/$name-$STEPS-eval.json" ] || "$BIN/evaluate" --policy "$ck" --prompts "$DIR/heldout.txt" --samples 4 \
    --steps 20 --guidance 3 --threads 1 --grid "$DIR/$name-$STEPS-grid.png" --report "$DIR/$name-$STEPS-eval.json" \
    --force -q >/dev/null
  # shellcheck disable=SC2086  # the probe's three figures are fields
  /usr/bin/python3 "$(dirname "$0")/eval_columns.py" "$DIR/$name-$STEPS-eval.json" "$name" "$STEPS" $probe \
    >>"$DIR/variants-$STEPS.tsv.tmp"
done
mv "$DIR/variants-$STEPS.tsv.tmp" "$DIR/variants-$STEPS.tsv"
cat "$DIR/variants-$STEPS.tsv"
