#!/usr/bin/env bash
# gradient_coherence.sh -- how much of the loop's policy gradient is signal? Samples prompts
# twice with independent noise (seeds S1 and S2), scores, computes tree advantages and takes ONE
# update step from the base model on each (all edges, accumulated into one step; --lambda 0,
# weight decay 0). AdamW's first step is about -lr sign(g), so the mean over weights of
# sign(step 1) sign(step 2) is the sign correlation of two independent gradient estimates: near 0
# when the gradient is noise, rising towards 1 as more samples per step average the noise out
# (for Gaussian estimates with correlation rho it is (2/pi) asin(rho)). Prints one TSV row:
# NAME, PROMPTS, that sign correlation, the cosine of the two steps, and the sign correlation
# over the weights of the built-in model's text stream and image stream ("-" where a model has
# no such tensors).
#
# With PROMPTS2 the second step samples other prompts: the two steps then share only what the
# gradient has in common ACROSS prompts (what could carry over to held-out prompts), where the
# same-prompt pair also shares each prompt's own direction. Steps are kept as
# DIR/NAME-<prompt file name>-sS.safetensors (with a .settings file) and reused by reruns and by
# other pairs under the same settings; other settings under the same NAME exit 64.
#
#   scripts/gradient_coherence.sh DIR NAME PROMPTS [S1 S2 [PROMPTS2]]
#   REWARDS="--reward brightness" scripts/gradient_coherence.sh out/gc bright out/attr16.txt
#   ROLLOUT_ARGS="--noise-block 4" scripts/gradient_coherence.sh out/gc b4 out/attr16.txt 3 4
#   scripts/gradient_coherence.sh out/gc loop out/attrA64.txt 1 2 out/attrB64.txt
# REWARDS defaults to the loop's "--reward shapes --reward shapes-partial:0.5"; UPDATE_ARGS to
# "--lambda 0" (set it empty for --mode window or independent rollouts, whose objective is GRPO);
# BIN to build/bin; POLICY to models/shapes-base.safetensors.
set -euo pipefail
D=$1 NAME=$2 P=$3 S1=${4:-1} S2=${5:-2} P2=${6:-$3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:-$SRC/build/bin}
POLICY=${POLICY:-$SRC/models/shapes-base.safetensors}
mkdir -p "$D"
step_file() { echo "$D/$NAME-$(basename "$2" .txt)-s$1.safetensors"; }
step() {  # step SEED PROMPTS: the first update step on one rollout, kept as step_file SEED PROMPTS
  local seed=$1 prompts=$2 out settings
  out=$(step_file "$seed" "$prompts")
  # A kept step is reused only under the settings that made it (NAME alone does not say them).
  settings="rollout: ${ROLLOUT_ARGS:-}; rewards: ${REWARDS:-}; update: ${UPDATE_ARGS---lambda 0}"
  if [ -e "$out" ]; then
    [ "$(cat "$out.settings" 2>/dev/null)" = "$settings" ] && return
    echo "gradient_coherence.sh: $out was made under other settings ($(cat "$out.settings" 2>/dev/null ||
      echo unrecorded)), not '$settings'; use another NAME or remove it" >&2
    exit 64
  fi
  # shellcheck disable=SC2086  # ROLLOUT_ARGS and REWARDS are option lists
  "$B/tree-rollout" --policy "$POLICY" --prompts "$prompts" --steps 10 --guidance 3 --seed "$seed" \
    --threads 2 ${ROLLOUT_ARGS:-} -o "$D/$NAME.rollout.h5" --force -q
  # shellcheck disable=SC2086
  "$B/score" ${REWARDS:---reward shapes --reward shapes-partial:0.5} "$D/$NAME.rollout.h5" \
    -o "$D/$NAME.scored.h5" --force -q
  "$B/advantage" --method tree "$D/$NAME.scored.h5" -o "$D/$NAME.adv.h5" --force -q
  # shellcheck disable=SC2086  # UPDATE_ARGS is an option list
  "$B/update" --policy "$POLICY" "$D/$NAME.adv.h5" --lr 1e-3 --weight-decay 0 --minibatch 256 \
    --grad-accum 100000 ${UPDATE_ARGS---lambda 0} --threads 2 --weights-only -o "$out.part" --force -q
  printf '%s\n' "$settings" >"$out.settings"
  mv "$out.part" "$out"
  rm -f "$D/$NAME.rollout.h5" "$D/$NAME.scored.h5" "$D/$NAME.adv.h5"
}
step "$S1" "$P"
step "$S2" "$P2"
one=$(step_file "$S1" "$P") two=$(step_file "$S2" "$P2")
label=$P
[ "$P2" = "$P" ] || label="$P vs $P2"
python3 - "$POLICY" "$one" "$two" "$NAME" "$label" <<'EOF'
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

def stream(name):  # the built-in model's two transformer streams; "" for the rest
    return "txt" if ".txt_" in name else "img" if ".img_" in name else ""

base, one, two = (tensors(p) for p in sys.argv[1:4])
dot = n1 = n2 = 0.0
same = {"": 0, "txt": 0, "img": 0}  # weights both steps moved the same way, minus opposite ways
total = {"": 0, "txt": 0, "img": 0}
for name, b in base.items():
    k = stream(name)
    total[k] += len(b)
    for x0, x1, x2 in zip(b, one[name], two[name]):
        d1, d2 = x1 - x0, x2 - x0
        dot += d1 * d2
        n1 += d1 * d1
        n2 += d2 * d2
        if d1 != 0 and d2 != 0:
            same[k] += 1 if (d1 > 0) == (d2 > 0) else -1
part = lambda k: f"{same[k] / total[k]:.4f}" if total[k] else "-"
print(f"{sys.argv[4]}\t{sys.argv[5]}\t{sum(same.values()) / sum(total.values()):.4f}\t"
      f"{dot / math.sqrt(n1 * n2):.4f}\t{part('txt')}\t{part('img')}")
EOF
