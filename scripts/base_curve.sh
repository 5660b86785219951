#!/usr/bin/env bash
# base_curve.sh -- the base-model recipe's held-out curve: the moving-average weights of every
# chunk checkpoint that `make -f Makefile.examples base-model OUT=DIR` has written so far,
# evaluated on the 67 held-out prompts x 8 seeds (20 steps, guidance 3) beside the denoising
# probe (64 renders) and the word-order probe (scripts/word_order_probe.sh: P's images against P,
# the colour swaps' images against P, and the pixel difference of P and its swap from the same
# noise; an order-blind model scores the first two alike with a difference near 1). Run it while
# the recipe trains: chunks that exist are evaluated, and evaluations that exist are reused.
# Writes DIR/base/curve.tsv. SAMPLES (8) seeds per prompt, for both evaluations.
#
#   scripts/base_curve.sh BIN DIR [LR [TIMESTEPS]]   # the recipe's BASE_LR / BASE_TIMESTEPS
set -euo pipefail
BIN=$1 DIR=$2 LR=${3:-1e-3} TS=${4:-logit-normal} SAMPLES=${SAMPLES:-8}
export SAMPLES
B=$DIR/base
[ -f "$B/heldout.txt" ] || "$BIN/treerpo-shapes" prompts --split heldout -o "$B/heldout.txt" --force
printf 'step\tmse@0.3\tmse@0.6\tmse@0.9\tstrict\tpartial\tcount_match\tforeground\tdiversity\tP_strict\tQ_as_P_strict\tP_Q_pixel_diff\n' \
  >"$B/curve.tsv.tmp"
for ck in $(ls "$B"/sft-*.safetensors | sort -t- -k2 -n); do
  k=$(basename "$ck" .safetensors); k=${k#sft-}
  [ "$k" = 0 ] && continue
  ema=$B/ema-$k.safetensors  # --until at the checkpoint's own step trains nothing: the average alone
  [ -f "$ema" ] || "$BIN/update" "$B/train.h5" --steps 16000 --batch-size 32 --lr "$LR" --warmup 200 --ema 0.999 \
    --seed 1 --threads 1 --timestep-sampling "$TS" --policy "$ck" --until "$k" --weights-only -o "$ema" --force -q
  [ -f "$B/eval-$k.json" ] || "$BIN/evaluate" --policy "$ema" --prompts "$B/heldout.txt" --samples "$SAMPLES" --steps 20 \
    --guidance 3 --threads 1 --grid "$B/grid-$k.png" --report "$B/eval-$k.json" --force -q >/dev/null
  probe=$("$BIN/treerpo-model" probe --policy "$ema" --count 64 --json | /usr/bin/python3 -c \
    "import json,sys; print(' '.join('%.4f' % r['mse'] for r in json.load(sys.stdin)['probe']))")
  order=$(BIN="$BIN" "$(dirname "$0")/word_order_probe.sh" "$ema" "$B/word-order-$k" | cut -d' ' -f1-3)
  # shellcheck disable=SC2086  # the probes' figures are fields
  row=$(/usr/bin/python3 "$(dirname "$0")/eval_columns.py" "$B/eval-$k.json" "$k" $probe)
  printf '%s\t%s\n' "$row" "${order// /$'\t'}" >>"$B/curve.tsv.tmp"
done
mv "$B/curve.tsv.tmp" "$B/curve.tsv"
cat "$B/curve.tsv"
