# update.sh -- SFT with `update`: N steps in one run equal N/2 + N/2 with a resume, bit for bit;
# the loss falls; SIGTERM writes a resumable checkpoint; metrics are JSON lines.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 2 --heads 2 -o base.safetensors -q
treerpo-shapes dataset --count 48 --seed 2 -o d.h5 -q
common=(d.h5 --steps 6 --batch-size 8 --grad-accum 2 --threads 1 --lr 1e-3 --warmup 2)
update --policy base.safetensors "${common[@]}" --seed 3 --metrics m.jsonl -o full.safetensors -q && pass || fail "update"
update --policy base.safetensors "${common[@]}" --seed 3 --until 3 -o half.safetensors -q && pass || fail "first half"
update --policy half.safetensors "${common[@]}" -o resumed.safetensors -q && pass || fail "resume"
digest() { treerpo-model info --policy "$1" --json | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['digest'])"; }
[ "$(digest full.safetensors)" = "$(digest resumed.safetensors)" ] && pass || fail "resumed run differs from the uninterrupted one"
[ "$(digest full.safetensors)" != "$(digest base.safetensors)" ] && pass || fail "training changed nothing"
# --ema: --weights-only writes the moving average, which differs from the live weights; a resumed
# run takes the decay from the checkpoint and writes the same average as an uninterrupted one.
update --policy base.safetensors "${common[@]}" --seed 3 --ema 0.9 --weights-only -o ema-full.safetensors -q \
  && pass || fail "update --ema"
update --policy base.safetensors "${common[@]}" --seed 3 --ema 0.9 --until 3 -o ema-half.safetensors -q \
  && update --policy ema-half.safetensors "${common[@]}" --weights-only -o ema-resumed.safetensors -q \
  && pass || fail "update --ema resumed"
[ "$(digest ema-full.safetensors)" = "$(digest ema-resumed.safetensors)" ] && pass || fail "resumed average differs"
[ "$(digest ema-full.safetensors)" != "$(digest full.safetensors)" ] && pass || fail "average equals the live weights"
"$PYTHON" - <<'PY' && pass || fail "metrics"
import json
rows = [json.loads(l) for l in open('m.jsonl')]
assert [r['step'] for r in rows] == list(range(1, 7)), rows
assert all(set(r) == {'step', 'loss', 'lr', 'grad_norm', 'samples_per_s'} for r in rows)
assert rows[0]['lr'] < rows[1]['lr']  # warmup
PY
# The loss falls on a small data set.
update --policy base.safetensors d.h5 --steps 150 --batch-size 16 --lr 2e-3 --seed 1 --metrics long.jsonl -o long.safetensors -q
"$PYTHON" -c "
import json
rows = [json.loads(l) for l in open('long.jsonl')]
first = sum(r['loss'] for r in rows[:10]) / 10; last = sum(r['loss'] for r in rows[-10:]) / 10
assert last < 0.8 * first, (first, last)
" && pass || fail "loss did not fall"
# SIGTERM: the step in progress finishes, a resumable checkpoint is written, exit 143.
update --policy base.safetensors d.h5 --steps 100000 --batch-size 8 --seed 5 -o stopped.safetensors -q 2>term.err &
pid=$!
wait_for_handler "$pid" TERM
sleep 2  # into the training steps
kill -TERM $pid
wait $pid
rc=$?
[ "$rc" = 143 ] && pass || fail "SIGTERM exit $rc: $(cat term.err)"
grep -q 'interrupted by signal 15; resumable checkpoint written to stopped.safetensors' term.err && pass || fail "message: $(cat term.err)"
"$PYTHON" - <<'PY' && pass || fail "checkpoint after SIGTERM"
import json, struct
blob = open('stopped.safetensors', 'rb').read()
(n,) = struct.unpack('<Q', blob[:8])
header = json.loads(blob[8:8 + n])
t = json.loads(header['__metadata__']['training'])
assert t['objective'] == 'sft' and 0 < t['step'] < 100000, t
assert any(k.startswith('optimizer.') for k in header), 'no optimizer state'
PY
# --weights-only: the same weights, no optimizer state, and a new run on it starts at step 0.
update --policy base.safetensors "${common[@]}" --seed 3 --weights-only -o weights.safetensors -q && pass || fail "weights-only"
[ "$(digest full.safetensors)" = "$(digest weights.safetensors)" ] && pass || fail "weights-only changed the weights"
"$PYTHON" - <<'PY' && pass || fail "weights-only file"
import json, struct, os
blob = open('weights.safetensors', 'rb').read()
(n,) = struct.unpack('<Q', blob[:8])
header = json.loads(blob[8:8 + n])
assert 'training' not in header['__metadata__'] and not any(k.startswith('optimizer.') for k in header), header.keys()
assert os.path.getsize('weights.safetensors') * 2 < os.path.getsize('full.safetensors')
PY
update --policy weights.safetensors "${common[@]}" --seed 3 --until 1 --json -o again.safetensors -q | grep -q '"step":1' \
  && pass || fail "training from a weights-only file did not start at step 0"
run_case no-output 64 'name with -o FILE' -- update --policy base.safetensors d.h5
run_case objective 64 'objective' -- update --policy base.safetensors d.h5 --objective grpo -o x.safetensors
run_case bad-data 65 'base\.safetensors: not an HDF5 file' -- update --policy base.safetensors base.safetensors -o x.safetensors
[ ! -e x.safetensors ] && pass || fail "failed run left an output"
finish
