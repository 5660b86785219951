# word_order.sh -- scripts/word_order_probe.sh on a tiny model: one line of four figures, the
# swapped prompt file swaps the two colours, a rerun reuses the samples, and a prompt file
# without colour-attribute prompts exits 65.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o m.safetensors -q
printf 'a circle\na red circle and a blue square\na green cross and a yellow triangle\n' >p.txt
SAMPLES=2 STEPS=2 BIN="$BIN" "$SRC/scripts/word_order_probe.sh" m.safetensors wo p.txt >out.txt 2>err.txt \
  && grep -qE '^[01]\.[0-9]{3} [01]\.[0-9]{3} [0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}$' out.txt && pass || fail "probe: $(cat out.txt err.txt)"
[ "$(cat wo/Q.txt)" = "$(printf 'a blue circle and a red square\na yellow cross and a green triangle')" ] && pass || fail "swap: $(cat wo/Q.txt)"
before=$(stat -c %Y wo/P.h5)
rel=$(realpath --relative-to=. "$BIN")  # a relative BIN works although the script changes directory
SAMPLES=2 STEPS=2 BIN="$rel" "$SRC/scripts/word_order_probe.sh" m.safetensors wo p.txt >again.txt 2>&1
cmp -s out.txt again.txt && [ "$(stat -c %Y wo/P.h5)" = "$before" ] && pass || fail "rerun: $(cat again.txt)"
printf 'a circle\n' >none.txt
run_case no-attr 65 'none\.txt: no colour-attribute prompt' -- env BIN="$BIN" "$SRC/scripts/word_order_probe.sh" m.safetensors wo2 none.txt
finish
