#!/usr/bin/env bash
# gradient_coherence.sh -- how much of the loop's policy gradient is signal? Samples the same
# prompts twice with independent noise (seeds S1 and S2), scores, computes tree advantages and
# takes ONE update step from the base model on each (all edges, accumulated into one step;
# --lambda 0, weight decay 0). AdamW's first step is -lr sign(g), so the cosine of the two weight steps is the
# sign correlation of two independent gradient estimates: near 0 when the gradient is noise,
# rising towards 1 as more samples per step average the noise out (for a Gaussian estimate with
# correlation rho it is (2/pi) asin(rho)). Prints one TSV row; reruns reuse finished steps.
#
#   scripts/gradient_coherence.sh DIR NAME PROMPTS [S1 S2]
#   REWARDS="--reward brightness" scripts/gradient_coherence.sh out/gc bright out/attr16.txt
#   ROLLOUT_ARGS="--noise-block 4" scripts/gradient_coherence.sh out/gc b4 out/attr16.txt 3 4
# REWARDS defaults to the loop's "--reward shapes --reward shapes-partial:0.5"; BIN to build/bin;
# POLICY to models/shapes-base.safetensors.
set -euo pipefail
D=$1 NAME=$2 P=$3 S1=${4:-1} S2=${5:-2}
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:-$SRC/build/bin}
POLICY=${POLICY:-$SRC/models/shapes-base.safetensors}
mkdir -p "$D"
for s in "$S1" "$S2"; do
  out="$D/$NAME-s$s.safetensors"
  [ -e "$out" ] && continue
  # shellcheck disable=SC2086  # ROLLOUT_ARGS and REWARDS are option lists
  "$B/tree-rollout" --policy "$POLICY" --prompts "$P" --steps 10 --guidance 3 --seed "$s" --threads 2 \
    ${ROLLOUT_ARGS:-} -o "$D/$NAME.rollout.h5" --force -q
  # shellcheck disable=SC2086
  "$B/score" ${REWARDS:---reward shapes --reward shapes-partial:0.5} "$D/$NAME.rollout.h5" -o "$D/$NAME.scored.h5" \
    --force -q
  "$B/advantage" --method tree "$D/$NAME.scored.h5" -o "$D/$NAME.adv.h5" --force -q
  "$B/update" --policy "$POLICY" "$D/$NAME.adv.h5" --lr 1e-3 --weight-decay 0 --minibatch 256 --grad-accum 100000 --lambda 0 \
    --threads 2 --weights-only -o "$out.part" --force -q
  mv "$out.part" "$out"
done
rm -f "$D/$NAME.rollout.h5" "$D/$NAME.scored.h5" "$D/$NAME.adv.h5"
python3 - "$POLICY" "$D/$NAME-s$S1.safetensors" "$D/$NAME-s$S2.safetensors" "$NAME" "$P" <<'EOF'
import array, json, math, struct, sys

def tensors(path):  # float32 tensors of a safetensors file, by name
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header, data = json.loads(blob[8:8 + n]), blob[8 + n:]
    out = {}
    for name, t in header.items():
        if name != "__metadata__" and t["dtype"] == "F32":
            a = array.array("f")
            a.frombytes(data[t["data_offsets"][0]:t["data_offsets"][1]])
            out[name] = a
    return out

base, one, two = (tensors(p) for p in sys.argv[1:4])
dot = n1 = n2 = 0.0
agree = moved = 0
for name, b in base.items():
    for x0, x1, x2 in zip(b, one[name], two[name]):
        d1, d2 = x1 - x0, x2 - x0
        dot += d1 * d2
        n1 += d1 * d1
        n2 += d2 * d2
        if d1 != 0 and d2 != 0:
            moved += 1
            agree += (d1 > 0) == (d2 > 0)
cos = dot / math.sqrt(n1 * n2)
print(f"{sys.argv[4]}\t{sys.argv[5]}\t{cos:.4f}\t{agree / moved:.4f}\t{math.sin(math.pi / 2 * cos):.4f}")
EOF
