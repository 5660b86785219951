#!/usr/bin/env bash
# word_order_probe.sh -- does a policy read which colour goes with which shape? Samples the
# colour-attribute prompts P ("a red circle and a blue square") and their colour swaps Q ("a blue
# circle and a red square") on the same seeds (line i of both files is prompt id i, and evaluate
# keys the initial noise by prompt id and sample), then scores Q's images against P's text. A model
# that reads the binding passes P with P's images far more often than with Q's; an order-blind one
# scores both alike, and draws nearly the same image for P and Q from the same noise.
#
#   scripts/word_order_probe.sh POLICY DIR [PROMPTS]
# PROMPTS defaults to the held-out split; its colour-attribute lines are used. Prints one line:
#   P_strict Q_as_P_strict pixel_diff_same_seed pixel_diff_other_seed
# (mean absolute pixel difference, 0-255: P against Q on the same seed, P against P on the next
# seed of the same prompt). Files are kept in DIR and reused. BIN defaults to build/bin; needs
# /usr/bin/python3 with h5py and numpy. SAMPLES (8) and STEPS (20) set the sampling.
set -euo pipefail
POLICY=$(realpath "$1") D=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(realpath "${BIN:-$SRC/build/bin}")  # absolute: the script changes directory
SAMPLES=${SAMPLES:-8} STEPS=${STEPS:-20}
export HDF5_PLUGIN_PATH=${HDF5_PLUGIN_PATH:-$(dirname "$B")/hdf5-plugins}
PROMPTS=${3:+$(realpath "$3")}
mkdir -p "$D"
cd "$D"
if [ -z "$PROMPTS" ]; then "$B/treerpo-shapes" prompts --split heldout -o heldout.txt -q -f; PROMPTS=heldout.txt; fi
C='(red|green|blue|yellow|purple)'
grep -E "^a $C [a-z]+ and a $C [a-z]+\$" "$PROMPTS" >P.txt || { echo "word_order_probe.sh: $PROMPTS: no colour-attribute prompt" >&2; exit 65; }
awk '{print $1" "$6" "$3" "$4" "$5" "$2" "$7}' P.txt >Q.txt
for x in P Q; do
  [ -f "$x.h5" ] || "$B/evaluate" --policy "$POLICY" --prompts "$x.txt" --samples "$SAMPLES" --steps "$STEPS" --guidance 3 \
    --seed 7 --samples-out "$x.h5" --no-progress -q -f >/dev/null
done
/usr/bin/python3 - "$SAMPLES" <<'PY'
import shutil, sys
import h5py, numpy as np
shutil.copy('Q.h5', 'QasP.h5')   # Q's images under P's texts, for the reward
with h5py.File('P.h5', 'r') as p, h5py.File('QasP.h5', 'r+') as q:
    texts = p['text'][:]
    del q['text']
    q.create_dataset('text', data=texts, dtype=p['text'].dtype)
    a, b = p['policy/images'][:].astype(float), q['policy/images'][:].astype(float)
s = int(sys.argv[1])
per = a.reshape(-1, s, *a.shape[1:])
other = np.abs(per - np.roll(per, 1, axis=1)).mean() if s > 1 else float('nan')
open('pixels.txt', 'w').write(f"{np.abs(a - b).mean():.2f} {other:.2f}\n")
PY
strict() { "$B/treerpo-shapes" explain "$1" --json | /usr/bin/python3 -c "import json, sys; print(f\"{json.load(sys.stdin)['strict']:.3f}\")"; }
echo "$(strict P.h5) $(strict QasP.h5) $(cat pixels.txt)"
