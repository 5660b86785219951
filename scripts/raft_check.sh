#!/usr/bin/env bash
# raft_check.sh -- does the reward's information reach the model by regression, where the policy
# gradient finds none? Reward-filtered fine-tuning (RAFT, one round of expert iteration) from the
# base model against its controls, evaluated on the held-out prompts and the training prompts:
#   a-sel   SFT on the base's ODE samples that pass the strict reward + as many renders;
#   b-null  the same number of the base's samples drawn at random + as many renders;
#   c-rend  twice as many renders alone (continued supervised training);
#   o-LR    an oracle, diagnostic only: 2N renders of the HELD-OUT prompts, at each learning rate
#           of ORACLE_LRS (default "3e-5 1e-4"): what the best possible data gives at this budget.
# The samples: the 273 training prompts x 8 seeds, 20 ODE steps, guidance 3 (evaluate
# --samples-out); `treerpo-shapes select` keeps the passing ones (N), and
# scripts/random_subset_dataset.py draws N at random. Each arm: update --objective sft from the
# base, batch 32, constant learning rate LR (default 3e-5), logit-normal sigma, 500 steps, with
# held-out evaluations (67 prompts x 8 seeds, 20 steps, guidance 3, seed 7) at 250 and 500 and a
# training-prompt evaluation (273 x 2 seeds) at 500. Every file is kept in DIR and reused by a rerun.
#
#   scripts/raft_check.sh DIR TABLE
# The sizes above are defaults that the environment can shrink (the test runs a tiny one):
# ARM_STEPS (500; evaluated at half and at the end), SAMPLES (8 per training prompt),
# EVAL_SAMPLES (8), TRAIN_EVAL_SAMPLES (2), RENDERS (24000: the data set the random subset takes
# task kinds from), TRAIN_PROMPTS and HELDOUT_PROMPTS (files; default the two splits).
# Prints and writes TABLE (TSV: arm, step, held-out strict, its paired difference to the base with
# a 95 % interval, partial, count match, foreground, diversity, training-prompt strict). About an
# hour cold on 2 cores. THREADS (default 2) sets the training's threads, TREERPO_THREADS the
# evaluations'. BIN defaults to build/bin; needs /usr/bin/python3 with h5py for the random subset.
set -euo pipefail
D=$1 TABLE=$(realpath -m "$2")
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(realpath "${BIN:-$SRC/build/bin}")  # absolute: the script changes directory
LR=${LR:-3e-5}
ARM_STEPS=${ARM_STEPS:-500} SAMPLES=${SAMPLES:-8} EVAL_SAMPLES=${EVAL_SAMPLES:-8}
TRAIN_EVAL_SAMPLES=${TRAIN_EVAL_SAMPLES:-2} RENDERS=${RENDERS:-24000}
HALF=$((ARM_STEPS / 2))
export ARM_STEPS HALF
BASE=$SRC/models/shapes-base.safetensors
PY=/usr/bin/python3
export HDF5_PLUGIN_PATH=${HDF5_PLUGIN_PATH:-$(dirname "$B")/hdf5-plugins}
for f in ${TRAIN_PROMPTS:+"$TRAIN_PROMPTS"} ${HELDOUT_PROMPTS:+"$HELDOUT_PROMPTS"}; do
  [ -r "$f" ] || { echo "raft_check.sh: $f: cannot read the prompt file" >&2; exit 66; }
done
TRAIN_PROMPTS=${TRAIN_PROMPTS:+$(realpath "$TRAIN_PROMPTS")} HELDOUT_PROMPTS=${HELDOUT_PROMPTS:+$(realpath "$HELDOUT_PROMPTS")}
mkdir -p "$D"
cd "$D"
if [ ! -f train.txt ]; then
  if [ -n "$TRAIN_PROMPTS" ]; then cp "$TRAIN_PROMPTS" train.txt
  else "$B/treerpo-shapes" prompts --split train --shuffle --seed 1 -o train.txt -q; fi
fi
if [ ! -f heldout.txt ]; then
  if [ -n "$HELDOUT_PROMPTS" ]; then cp "$HELDOUT_PROMPTS" heldout.txt
  else "$B/treerpo-shapes" prompts --split heldout -o heldout.txt -q; fi
fi
[ -f renders.h5 ] || "$B/treerpo-shapes" dataset --split train --count "$RENDERS" --seed 1 -o renders.h5 -q
[ -f base-train-s8-t20.h5 ] || "$B/evaluate" --policy "$BASE" --prompts train.txt --samples "$SAMPLES" --steps 20 --guidance 3 \
  --seed 102 --samples-out base-train-s8-t20.h5 --report base-train-s8-t20.json --no-progress -q -f >/dev/null
[ -f raft20.h5 ] || "$B/treerpo-shapes" select base-train-s8-t20.h5 -o raft20.h5 -q
N=$("$PY" -c "import h5py; print(h5py.File('raft20.h5', 'r')['images'].shape[0])")
[ -f null20.h5 ] || "$PY" "$SRC/scripts/random_subset_dataset.py" base-train-s8-t20.h5 "$N" renders.h5 null20.h5 --seed 1
[ -f rend-N.h5 ] || "$B/treerpo-shapes" dataset --split train --count "$N" --seed 11 -o rend-N.h5 -q
[ -f oracle-rend.h5 ] || "$B/treerpo-shapes" dataset --split heldout --count $((2 * N)) --seed 11 -o oracle-rend.h5 -q
[ -f rend-2N.h5 ] || "$B/treerpo-shapes" dataset --split train --count $((2 * N)) --seed 11 -o rend-2N.h5 -q

evaluate_on() {  # PROMPTS SAMPLES POLICY REPORT
  [ -f "$4" ] || "$B/evaluate" --policy "$3" --prompts "$1" --samples "$2" --steps 20 --guidance 3 --seed 7 \
    --report "$4" --no-progress -q -f >/dev/null
}
held_out() { evaluate_on heldout.txt "$EVAL_SAMPLES" "$@"; }
training() { evaluate_on train.txt "$TRAIN_EVAL_SAMPLES" "$@"; }
arm() {  # NAME LR DATA...
  local name=$1 lr=$2 prev=$BASE k
  shift 2
  for k in $HALF $ARM_STEPS; do
    [ -f "$name-$k.safetensors" ] || "$B/update" "$@" --objective sft --policy "$prev" --steps "$ARM_STEPS" --batch-size 32 \
      --lr "$lr" --lr-schedule constant --timestep-sampling logit-normal --seed 1 --threads "${THREADS:-2}" --until "$k" \
      --metrics "$name-$k.jsonl" -o "$name-$k.safetensors" -f -q
    prev=$name-$k.safetensors
    held_out "$prev" "$name-$k.eval.json"
  done
  [ "${name#o-}" != "$name" ] || training "$prev" "$name-$ARM_STEPS.train.json"
}
held_out "$BASE" base.eval.json
training "$BASE" base.train.json
arm a-sel "$LR" raft20.h5 rend-N.h5
arm b-null "$LR" null20.h5 rend-N.h5
arm c-rend "$LR" rend-2N.h5
ORACLE_LRS=${ORACLE_LRS-3e-5 1e-4}
export ORACLE_LRS
for lr in $ORACLE_LRS; do arm "o-$lr" "$lr" oracle-rend.h5; done

# The table: held-out figures, the strict difference to the base paired by (prompt, seed) with a
# 95 % normal interval, and strict on the training prompts.
"$PY" - "$TABLE" <<'PY'
import json, math, os, sys
def load(path):
    return json.load(open(path)) if os.path.exists(path) else None
def per_sample(report):
    return [x for p in report["per_prompt"] for x in p["policy"]["shapes"]]
base = load("base.eval.json")
rows = ["arm\tstep\tstrict\tdiff_vs_base\tpartial\tcount_match\tforeground\tdiversity\ttrain_strict"]
steps = (int(os.environ["HALF"]), int(os.environ["ARM_STEPS"]))
arms = ["a-sel", "b-null", "c-rend"] + [f"o-{lr}" for lr in os.environ["ORACLE_LRS"].split()]
for name, step in [("base", 0)] + [(a, k) for a in arms for k in steps]:
    r = base if name == "base" else load(f"{name}-{step}.eval.json")
    t = load("base.train.json" if name == "base" else f"{name}-{step}.train.json")
    d = [x - y for x, y in zip(per_sample(r), per_sample(base))]
    mean = sum(d) / len(d)
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
    m, j = r["policy"]["metrics"], r["policy"]["judge"]
    rows.append("\t".join([name, str(step), f"{m['shapes']['mean']:.3f}",
                           f"{mean:+.3f} ({mean - 1.96 * se:+.3f}..{mean + 1.96 * se:+.3f})",
                           f"{m['shapes-partial']['mean']:.3f}", f"{j['count_match']['mean']:.3f}",
                           f"{j['foreground']['mean']:.3f}", f"{j['diversity']['mean']:.3f}",
                           f"{t['policy']['metrics']['shapes']['mean']:.3f}" if t else ""]))
open(sys.argv[1] + ".tmp", "w").write("\n".join(rows) + "\n")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("\n".join(rows))
PY
