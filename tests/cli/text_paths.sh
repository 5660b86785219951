# text_paths.sh -- scripts/text_paths.py on tiny models: one row per sigma with finite shares; a
# model that can only read a bag of words (learned text positions set to 0, no text layers) has a
# swap share of 0, the same model with sin-cos text positions does not, one without pooled text
# (--text-pool none) has a pooled share of 0; renders without a
# colour-attribute prompt are refused by name.
source "$(dirname "$0")/lib.sh"
"$PYTHON" -c "import torch" 2>/dev/null || { echo "SKIP: $PYTHON has no torch (apt-get install python3-torch)"; exit 77; }
export HDF5_PLUGIN_PATH=$BIN/../hdf5-plugins
treerpo-shapes dataset --count 60 --image-size 16 --seed 1 -o r.h5 -q
for pos in learned sincos nopool; do
  arch="--text-pos-embed $pos"
  [ $pos = nopool ] && arch="--text-pool none"
  treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 $arch -o $pos-0.safetensors -q
  # A few steps, so that the zero-initialised output layer gives the text an effect to measure.
  update r.h5 --objective sft --policy $pos-0.safetensors --steps 5 --batch-size 8 --lr 3e-3 --warmup 0 --seed 1 \
    --weights-only -o $pos.safetensors -q || fail "sft $pos"
done
# The bag-of-words model: the learned position table overwritten with zeros, bytes in place.
"$PYTHON" - <<'PY' || fail "zeroing the text positions"
import json, struct
raw = bytearray(open('learned.safetensors', 'rb').read())
n = struct.unpack('<Q', raw[:8])[0]
b, e = json.loads(raw[8:8 + n])['text_pos']['data_offsets']
raw[8 + n + b:8 + n + e] = bytes(e - b)
open('bag.safetensors', 'wb').write(raw)
PY
for m in bag sincos nopool; do
  "$PYTHON" "$SRC/scripts/text_paths.py" $m.safetensors r.h5 --count 8 >$m.tsv 2>$m.err || fail "$m: $(cat $m.err)"
done
[ "$(head -1 sincos.tsv)" = "$(printf 'sigma\tE\tcut_pool\tcut_attn\tswap')" ] && [ "$(wc -l <sincos.tsv)" = 6 ] \
  && pass || fail "header and five sigmas: $(cat sincos.tsv)"
awk -F'\t' 'NR > 1 && !($2 > 0 && $3 > 0 && $4 > 0 && $5 >= 0 && $3 < 10 && $4 < 10) {bad = 1} END {exit bad}' sincos.tsv \
  && pass || fail "finite positive shares: $(cat sincos.tsv)"
awk -F'\t' 'NR > 1 && $5 > 1e-4 {bad = 1} END {exit bad}' bag.tsv && pass || fail "bag of words reads order: $(cat bag.tsv)"
awk -F'\t' 'NR > 1 && $5 < 1e-3 {bad = 1} END {exit bad}' sincos.tsv && pass || fail "sin-cos is order-blind: $(cat sincos.tsv)"
awk -F'\t' 'NR > 1 && !($3 == 0 && $4 > 0) {bad = 1} END {exit bad}' nopool.tsv && pass || fail "no pooled text: $(cat nopool.tsv)"
treerpo-shapes dataset --count 5 --image-size 16 --seed 1 -o few.h5 -q  # the first five kinds only
run_case no-attr 1 'few\.h5: /prompts/text: no colour-attribute prompt' -- "$PYTHON" "$SRC/scripts/text_paths.py" sincos.safetensors few.h5
finish
