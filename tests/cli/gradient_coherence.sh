# gradient_coherence.sh -- scripts/gradient_coherence.sh prints one TSV row (name, prompts, the
# sign correlation and the cosine of two independent first update steps, the sign correlation
# per stream), keeps both steps, and a
# rerun reuses them and prints the same row; a pair on other prompts reuses the first step.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o m.safetensors -q
printf 'a red circle\n' >p.txt
export POLICY=$PWD/m.safetensors
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt >row.tsv 2>err.log \
  && pass || fail "check: $(tail -3 err.log)"
grep -qE '^one	p\.txt	-?[01]\.[0-9]{4}	-?[01]\.[0-9]{4}	-?[01]\.[0-9]{4}	-?[01]\.[0-9]{4}$' row.tsv && pass || fail "row: $(cat row.tsv)"
[ -e gc/one-p-s1.safetensors ] && [ -e gc/one-p-s2.safetensors ] && [ ! -e gc/one.adv.h5 ] && pass || fail "files: $(ls gc)"
[ "$(treerpo-model info --policy gc/one-p-s1.safetensors | grep digest)" != "$(treerpo-model info --policy gc/one-p-s2.safetensors | grep digest)" ] \
  && pass || fail "the two seeds gave the same step"
before=$(stat -c %Y gc/one-p-s1.safetensors)
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt >again.tsv 2>&1
cmp -s row.tsv again.tsv && [ "$(stat -c %Y gc/one-p-s1.safetensors)" = "$before" ] && pass || fail "rerun: $(cat again.tsv)"
# A kept step made under other settings is refused, not silently reused.
REWARDS="--reward saturation" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt >other.tsv 2>other.err
[ $? = 64 ] && grep -q "made under other settings" other.err && [ ! -s other.tsv ] && pass || fail "other settings: $(cat other.err)"
# Other prompts for the second step: the first step is reused, the row names both files.
printf 'a blue square\n' >q.txt
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt 1 2 q.txt >cross.tsv 2>&1 \
  && grep -qE '^one	p\.txt vs q\.txt	-?[01]\.[0-9]{4}	-?[01]\.[0-9]{4}	-?[01]\.[0-9]{4}	-?[01]\.[0-9]{4}$' cross.tsv && [ -e gc/one-q-s2.safetensors ] \
  && [ "$(stat -c %Y gc/one-p-s1.safetensors)" = "$before" ] && pass || fail "cross: $(cat cross.tsv)"
# A step against itself: cosine 1, and every weight that moved agrees with itself (a fresh model
# moves only its output layer: zero-initialised, it passes no gradient to the streams).
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt 1 1 >self.tsv 2>&1 \
  && awk -F'\t' '$4 == "1.0000" && $3 > 0.1 && $5 >= 0 && $6 >= 0 { ok = 1 } END { exit !ok }' self.tsv \
  && pass || fail "self: $(cat self.tsv)"
# The null reward: 0 or 1 per image, the same for the same image, about 1 in 5 ones.
treerpo-synth --count 8 --seed 3 -o synth.h5 -q
for i in 1 2; do
  score --reward-process "$SRC/scripts/null_reward_process.py" synth.h5 -o null$i.h5 -q || fail "null reward run $i"
done
treerpo-inspect --json null1.h5 >null1.json && treerpo-inspect --json null2.h5 >null2.json
"$PYTHON" - <<'PY' && pass || fail "null reward: $(grep -o '"null": {[^}]*' null1.json)"
import json
a, b = (json.load(open(f))["rewards"]["null"] for f in ("null1.json", "null2.json"))
assert a["count"] == 128 and a["nan"] == 0 and a["min"] == 0.0 and a["max"] == 1.0, a
assert 0.1 < a["mean"] < 0.3 and abs(a["std"] ** 2 - a["mean"] * (1 - a["mean"])) < 0.02, a
assert (a["mean"], a["std"]) == (b["mean"], b["std"]), (a, b)
PY
# reward_spread.py on two scorings of the same trees: identical files, so each tree's spread is
# the prompt's whole spread (share 1.00), and every count is over 8 prompts x 2 files.
"$PYTHON" "$SRC/scripts/reward_spread.py" null1.h5 null2.h5 >spread.tsv 2>&1 \
  && awk -F'\t' '$1 == "null" && $5 == "1.00" && $6 ~ / of 16$/ { ok = 1 } END { exit !ok }' spread.tsv \
  && pass || fail "reward_spread: $(cat spread.tsv)"
# tree_leaves_grid.py: 3 rows of 16 leaves of 32 px, scale 3, 2 px frames -> 1600 x 300 RGB PNG.
"$PYTHON" "$SRC/scripts/tree_leaves_grid.py" null1.h5 grid.png --reward null >grid.log 2>&1 \
  && "$PYTHON" - <<'PY' && pass || fail "tree_leaves_grid: $(cat grid.log)"
import struct, zlib
blob = open("grid.png", "rb").read()
assert blob[:8] == b"\x89PNG\r\n\x1a\n"
w, h, depth, colour = struct.unpack(">IIBB", blob[16:26])
assert (w, h, depth, colour) == (1600, 300, 8, 2), (w, h, depth, colour)
n = struct.unpack(">I", blob[33:37])[0]
assert len(zlib.decompress(blob[41:41 + n])) == h * (1 + 3 * w)
PY
finish
