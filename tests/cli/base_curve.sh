# base_curve.sh -- scripts/base_curve.sh on a tiny recipe: one row per chunk checkpoint (the
# moving average's held-out figures, the denoising probe and the word-order probe), and a rerun
# reuses every evaluation.
source "$(dirname "$0")/lib.sh"
mkdir -p d/base
treerpo-shapes dataset --split train --count 64 --seed 1 -o d/base/train.h5 -q
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 -o d/base/sft-0.safetensors -q
update d/base/train.h5 --policy d/base/sft-0.safetensors --steps 16000 --until 2 --batch-size 8 --lr 1e-3 --warmup 200 \
  --ema 0.999 --seed 1 --threads 1 --timestep-sampling logit-normal -o d/base/sft-2.safetensors -q
SAMPLES=1 "$SRC/scripts/base_curve.sh" "$BIN" d >out.txt 2>err.txt && pass || fail "curve: $(cat err.txt)"
[ "$(head -1 d/base/curve.tsv | tr '\t' ' ')" = \
  "step mse@0.3 mse@0.6 mse@0.9 strict partial count_match foreground diversity P_strict Q_as_P_strict P_Q_pixel_diff" ] \
  && pass || fail "header: $(head -1 d/base/curve.tsv)"
[ "$(wc -l <d/base/curve.tsv)" = 2 ] && awk -F'\t' 'NR == 2 && NF == 12 && $1 == 2 && $10 ~ /^[01]\.[0-9][0-9][0-9]$/ && $12 ~ /^[0-9]+\.[0-9][0-9]$/ {ok = 1}
  END {exit !ok}' d/base/curve.tsv && pass || fail "row: $(cat d/base/curve.tsv)"
[ -f d/base/word-order-2/P.h5 ] && [ -f d/base/grid-2.png ] && pass || fail "files: $(ls d/base)"
before=$(stat -c %Y d/base/eval-2.json d/base/word-order-2/P.h5 d/base/ema-2.safetensors)
cp d/base/curve.tsv first.tsv
SAMPLES=1 "$SRC/scripts/base_curve.sh" "$BIN" d >again.txt 2>&1
cmp -s first.tsv d/base/curve.tsv && [ "$(stat -c %Y d/base/eval-2.json d/base/word-order-2/P.h5 d/base/ema-2.safetensors)" = "$before" ] \
  && pass || fail "rerun: $(cat again.txt)"
finish
