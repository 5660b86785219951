# makefile_examples.sh -- every Makefile.examples target runs; a rerun does nothing; an
# interrupted run resumes at the first missing file.
source "$(dirname "$0")/lib.sh"
# Tiny sizes: 2 prompts, 5 steps, 1 evaluation sample of 2 steps, a 2-step base model recipe.
# The RL loop: 2 iterations of 2 prompts, update on 2 local ranks; loop-long continues it to 3,
# with held-out curve points at iterations 0, 2 and 3.
mk() { make -s -f "$SRC/Makefile.examples" BIN="$BIN" OUT="$WORK/out" COUNT=4 PROMPTS=2 STEPS=5 EVAL_SAMPLES=1 \
  EVAL_STEPS=2 BASE_DATA=12 BASE_STEPS=2 BASE_CHUNK=1 DATA_COUNT=24 ITERS=2 LONG_ITERS=3 LONG_EVERY=2 LOOP_PROMPTS=2 STUDY_BUDGET=1 STUDY_POINTS=1 \
  STUDY_EVAL_SAMPLES=1 "$@"; }
mk all >all.log 2>&1 && pass || fail "make all: $(tail -5 all.log)"
grep -q "merged shards equal the single run" all.log && pass || fail "merge check did not run"
grep -q "the pipeline equals the cached files" all.log && pass || fail "pipeline check did not run"
grep -q "held-out strict" all.log && pass || fail "evaluate-base did not run"
grep -q "^retrained: digest: sha256:" all.log && pass || fail "base-model did not run"
grep -qE "^ +1 +[0-9.]+ +[0-9.]+ " all.log && grep -q "^held-out shapes: base " all.log && pass || fail "loop table: $(grep -A4 iter all.log)"
grep -q "the piped iteration equals the file-based one" all.log && pass || fail "loop pipe check did not run"
grep -q "iteration 0 redone from cache" all.log && pass || fail "loop rescore did not run"
# The loop's files validate, the provenance chain names every stage, and the checkpoints changed.
L=$WORK/out/loop
for f in "$L"/it*.h5; do treerpo-inspect "$f" >/dev/null 2>&1 || fail "$f does not validate"; done && pass
"$PYTHON" - "$L" <<'PY' && pass || fail "loop provenance"
import json, struct, sys, h5py
L = sys.argv[1]
with h5py.File(f'{L}/it1.adv.h5', 'r') as f:
    tools = [json.loads(r)['tool'] for r in f['provenance'][()]]
assert tools == ['tree-rollout', 'score', 'advantage'], tools
def meta(path):
    blob = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', blob[:8])
    return json.loads(blob[8:8 + n])['__metadata__']
p = json.loads(meta(f'{L}/ckpt2.safetensors')['provenance'])
assert p['tool'] == 'update' and p['inputs'][-1]['path'].endswith('it1.adv.h5'), p
t = json.loads(meta(f'{L}/ckpt2.safetensors')['training'])
assert t['iteration'] == 1 and t['objective'] == 'nft', t  # the loop's default objective
PY
[ "$(treerpo-model info --policy "$L/ckpt2.safetensors" | grep digest)" != "$(treerpo-model info --policy "$L/ckpt0.safetensors" | grep digest)" ] \
  && pass || fail "the loop did not change the checkpoint"
# loop-long continued the loop's own files (its iteration 2 came after the loop's evaluation) and
# printed its held-out curve at iterations 0, 2 and 3, the last one also paired with the base.
[ -e "$L/ckpt3.safetensors" ] && [ "$(stat -c %Y "$L/eval2.json")" -le "$(stat -c %Y "$L/it2.rollout.h5")" ] \
  && pass || fail "loop-long did not continue the loop"
[ "$(grep -cE "^ +[023] +[0-9.]+ \([0-9.]+\) +[0-9.]+ " all.log)" = 3 ] && grep -q "^grid (base | iteration 3)" all.log \
  && grep -q "<polyline" "$L/heldout-curve.svg" && pass || fail "loop-long curve: $(grep -A4 'count match foreground' all.log)"
# The study's table (one seed: plain values), plots, and a rerun that only rebuilds the table.
grep -qE "^\| tree-lambda0 \| 1 \| [0-9]+ \| [0-9]+ \| [0-9.]+ \| " all.log && grep -q "^| base (before training) | 0 | 0 | 0 |" all.log \
  && grep -q "^Claim" all.log && [ -s "$WORK/out/study/study.svg" ] && [ -s "$WORK/out/study/judge.svg" ] \
  && pass || fail "study: $(grep -A12 'configuration' all.log)"
grep -qE "^\| tree-nft \| 1 \| [0-9]+ \| [0-9]+ \| [0-9.]+ \| " all.log && grep -qE "^\| independent-nft \| 1 \| " all.log \
  && grep -qE "^\| window-nft \| 1 \| " all.log && grep -qE "^\| tree-nft-beta0 \| 1 \| " all.log \
  && pass || fail "study: no nft rows: $(grep -A12 'configuration' all.log)"
mk study >study.log 2>&1 && [ "$(grep -c ': done at iteration 1 ' study.log)" = 10 ] && pass || fail "study rerun: $(head -8 study.log)"
[ -s "$L/reward-curve.svg" ] && grep -q "<polyline" "$L/reward-curve.svg" && pass || fail "no reward curve"
mk -q "$WORK/out/synth.h5" "$WORK/out/merged.h5" "$WORK/out/train.h5" "$WORK/out/heldout-synth.h5" "$WORK/out/base.safetensors" \
  "$WORK/out/advantaged.h5" "$WORK/out/advantaged-leaf.h5" "$WORK/out/base-eval.json" "$WORK/out/shapes-base.safetensors" \
  "$WORK/out/loop/eval2.json" "$WORK/out/loop/eval3.json" "$WORK/out/loop/curve3.json" "$WORK/out/loop/ckpt1-leaf.safetensors" \
  && pass || fail "rerun would rebuild up-to-date files"
rm "$WORK/out/shard1.h5"
before=$(stat -c %Y "$WORK/out/shard0.h5")
mk merge-check >resume.log 2>&1 && pass || fail "resume: $(tail -5 resume.log)"
[ -e "$WORK/out/shard1.h5" ] && [ "$(stat -c %Y "$WORK/out/shard0.h5")" = "$before" ] && pass || fail "resume rebuilt more than the missing shard"
# An interrupted loop resumes at the first missing file: only the last update and what follows.
rm "$L/ckpt2.safetensors"
mk loop >loop.log 2>&1 && pass || fail "loop resume: $(tail -5 loop.log)"
[ -e "$L/ckpt2.safetensors" ] && [ "$(stat -c %Y "$L/it1.adv.h5")" -lt "$(stat -c %Y "$L/ckpt2.safetensors")" ] && pass || fail "loop did not resume"
mk clean && [ ! -e "$WORK/out" ] && pass || fail "clean"
finish
