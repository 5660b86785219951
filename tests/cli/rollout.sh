# rollout.sh -- tree-rollout end to end: files validate against the schema and the format's
# checks, NFE per prompt equals ALGORITHM.md's formula in every mode, a pipe gives the same file
# as a path, --max-batch, --threads, waves and shards change nothing beyond float rounding,
# float16 storage, and bad options or inputs fail with one line, a documented code, no output.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o m.safetensors -q
printf 'a red circle\nthree squares\na circle left of a triangle\ntwo crosses\na blue square\n' >p.txt
common=(--policy m.safetensors --prompts p.txt --steps 6 --seed 4 -q)
base=("${common[@]}" --depth 3 --branching 2,2,1)
tree-rollout "${base[@]}" --window-start 1 --threads 1 -o a.h5 && pass || fail "tree-rollout"
treerpo-inspect --json a.h5 >a.json && pass || fail "inspect rejects the file"
"$PYTHON" - "$SRC/schemas/trajectory-inspect-1.json" <<'PY' && pass || fail "schema / NFE / structure"
import json, sys, h5py, jsonschema
jsonschema.validate(json.load(open('a.json')), json.load(open(sys.argv[1])))
f = h5py.File('a.h5', 'r')
r = f['rollout'].attrs
assert r['mode'] == 'tree' and list(r['branching']) == [2, 2, 1] and r['window_start'] == 1
assert int(r['seed'][0]) == 4 and float(r['guidance'][0]) == json.load(open('a.json'))['rollout']['settings']['guidance']
# NFE = l + sum_k prod_{m<k} b_m + leaves (T - l - d) = 1 + (1 + 2 + 4) + 4 * 2 = 16
assert list(f['statistics/nfe'][:]) == [16] * 5, f['statistics/nfe'][:]
assert f['leaves/image'].shape == (20, 16, 16, 3) and f['nodes/latent'].shape == (5 * 11, 3, 16, 16)
assert (f['nodes/step'][:][f['nodes/parent'][:] < 0] == 1).all()  # roots at the window start
PY
# The modes on the same prompts: NFE as the formula says.
tree-rollout "${common[@]}" --depth 3 --mode window --leaves 3 --window-start 2 -o w.h5 && pass || fail "window mode"
tree-rollout "${common[@]}" --mode independent --leaves 2 -o i.h5 && pass || fail "independent mode"
"$PYTHON" - <<'PY' && pass || fail "baseline NFE and layout"
import h5py
w, i = h5py.File('w.h5', 'r'), h5py.File('i.h5', 'r')
assert list(w['statistics/nfe'][:]) == [3 * 6] * 5 and w['leaves/node'].shape == (15,)
assert list(i['statistics/nfe'][:]) == [2 * 6] * 5 and i['rollout'].attrs['depth'] == 6
assert (i['nodes/noise_std'][:][i['nodes/parent'][:] >= 0] > 0).all()  # SDE at every step
PY
# The ODE solver and stride outside the window: fewer evaluations, the window's states unchanged, recorded.
tree-rollout "${common[@]}" --depth 2 --branching 2 --ode-solver dpm2m --ode-stride 2 -o o.h5 && pass || fail "dpm2m stride 2"
tree-rollout "${common[@]}" --depth 2 --branching 2 -o e.h5 && pass || fail "euler"
"$PYTHON" - <<'PY' && pass || fail "ODE stride: NFE, window states, record"
import json, h5py, numpy as np
o, e = h5py.File('o.h5', 'r'), h5py.File('e.h5', 'r')
# window at step 0: 1 + 2 evaluations, then 4 leaves x ceil((6 - 2) / 2) = 8 (against 4 x 4 with Euler)
assert list(o['statistics/nfe'][:]) == [11] * 5 and list(e['statistics/nfe'][:]) == [19] * 5
assert np.array_equal(o['nodes/latent'][:], e['nodes/latent'][:])
assert np.array_equal(o['nodes/log_prob'][:], e['nodes/log_prob'][:], equal_nan=True)
assert not np.array_equal(o['leaves/latent'][:], e['leaves/latent'][:])
ode = json.loads(o['rollout'].attrs['settings'])['ode']
assert ode == {'solver': 'dpm2m', 'stride': 2}, ode
PY
# A pipe gives the same datasets as a file.
tree-rollout "${base[@]}" --window-start 1 --threads 1 -o - | cat >piped.h5 && same_content a.h5 piped.h5 && pass || fail "pipe differs"
# Batching, threads, waves and shards change nothing beyond floating-point rounding.
tree-rollout "${base[@]}" --window-start 1 --max-batch 3 --wave-prompts 2 -o b.h5 && pass || fail "small batches"
tree-rollout "${base[@]}" --window-start 1 --threads 2 -o t.h5 && pass || fail "two threads"
for s in 0 1 2; do tree-rollout "${base[@]}" --window-start 1 --shard $s/3 -o s$s.h5 || fail "shard $s"; done
treerpo-merge s0.h5 s1.h5 s2.h5 -o merged.h5 -q && pass || fail "merge"
"$PYTHON" - <<'PY' && pass || fail "results depend on batching, threads or shards"
import h5py, numpy as np
a = h5py.File('a.h5', 'r')
for name in ('b.h5', 't.h5', 'merged.h5'):
    b = h5py.File(name, 'r')
    for d in ('nodes/parent', 'nodes/step', 'nodes/kind', 'nodes/noise_key', 'leaves/node', 'statistics/nfe', 'prompts/id'):
        assert (a[d][:] == b[d][:]).all(), (name, d)
    for d in ('nodes/latent', 'leaves/latent'):
        assert np.abs(a[d][:] - b[d][:]).max() < 1e-4, (name, d)
    lp, lq = a['nodes/log_prob'][:], b['nodes/log_prob'][:]
    assert np.allclose(lp, lq, atol=1e-4, equal_nan=True), name
    assert np.abs(a['leaves/image'][:].astype(int) - b['leaves/image'][:]).max() <= 1, name
PY
# The output is streamed wave by wave into its temporary file (which grows while sampling); a run
# stopped part way through leaves neither the output nor the temporary behind.
mkdir -p stop
for i in $(seq 3000); do echo "a red circle"; done >stop/many.txt
tree-rollout --policy m.safetensors --prompts stop/many.txt --steps 6 --depth 3 --wave-prompts 2 -o stop/out.h5 -q \
  2>stop/err.txt &
pid=$!
for _ in $(seq 300); do ls -A stop | grep -q '^\.out\.h5\.tmp' && break; sleep 0.1; done
temp=$(ls -A stop/.out.h5.tmp* | head -1)
before=$(stat -c %s "$temp")
sleep 2
after=$(stat -c %s "$temp")
[ "$after" -gt "$before" ] && pass || fail "the temporary did not grow while sampling ($before -> $after bytes)"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" = 143 ] && [ -z "$(ls -A stop | grep -v -e err.txt -e many.txt)" ] && pass ||
  fail "stopped rollout: exit $rc, left $(ls -A stop): $(cat stop/err.txt)"
# float16 storage: latents stored as float16, log-probabilities of the rounded states.
tree-rollout "${base[@]}" --latent-dtype float16 --velocity -o h.h5 && pass || fail "float16"
"$PYTHON" -c "
import h5py, numpy as np; f = h5py.File('h.h5', 'r')
assert f['nodes/latent'].dtype == np.float16 and f['rollout'].attrs['latent_dtype'] == 'float16'
assert f['nodes/velocity'].shape == f['nodes/latent'].shape
" && pass || fail "float16 layout"
# --store-trunk: the trunk's states as a chain of depth-0 nodes; advantage leaves them NaN.
tree-rollout "${base[@]}" --window-start 2 --store-trunk -o st.h5 && score --reward brightness st.h5 -q | advantage -q -o sta.h5 \
  && "$PYTHON" -c "
import h5py, numpy as np; f = h5py.File('sta.h5', 'r')
d, s, e = f['nodes/depth'][:], f['nodes/step'][:], f['advantages/edge'][:]
assert ((d == 0) & (s < 2)).sum() == 2 * 5 and np.isnan(e[d == 0]).all() and not np.isnan(e[d > 0]).any()
" && pass || fail "--store-trunk"
# --store-suffix: every leaf's ODE-suffix states (steps l+d+1 .. T-1) as /leaves/path, format
# 1.1 (files are 1.4 since issue 17); kept by score, advantage and merge; the rest of the file is unchanged.
tree-rollout "${base[@]}" --window-start 1 --threads 1 --store-suffix -o sx.h5 && score --reward brightness sx.h5 -q \
  | advantage -q -o sxa.h5 && pass || fail "--store-suffix"
for s in 0 1; do tree-rollout "${base[@]}" --window-start 1 --threads 1 --store-suffix --shard $s/2 -o sx$s.h5 -q; done
treerpo-merge sx0.h5 sx1.h5 -o sxm.h5 -q && pass || fail "merge with /leaves/path"
"$PYTHON" - "$SRC/schemas/trajectory-inspect-1.json" <<'PY' && pass || fail "/leaves/path"
import h5py, json, subprocess, sys, jsonschema, numpy as np
a, x, m = h5py.File('a.h5', 'r'), h5py.File('sxa.h5', 'r'), h5py.File('sxm.h5', 'r')
# T = 6, l = 1, d = 3: suffix steps 4 -> 5 -> 6, stored state at step 5 only.
assert x['leaves/path'].shape == (20, 1, 3, 16, 16), x['leaves/path'].shape
assert list(x.attrs['treerpo_format_version']) == [1, 4]
assert (x['leaves/latent'][:] == a['leaves/latent'][:]).all() and (x['nodes/latent'][:] == a['nodes/latent'][:]).all()
assert np.abs(m['leaves/path'][:] - x['leaves/path'][:]).max() < 1e-4
j = json.loads(subprocess.run(['treerpo-inspect', '--json', 'sxa.h5'], capture_output=True, text=True, check=True).stdout)
jsonschema.validate(j, json.load(open(sys.argv[1])))
PY
run_case suffix-none 64 'store-suffix: the window ends within one step of the last' -- \
  tree-rollout "${common[@]}" --depth 5 --window-start 0 --store-suffix -o x.h5
# Dynamic noise: a_k = a_0 (1 + beta k / (d - 1)), recorded with the settings.
"$PYTHON" -c "
import h5py, json, numpy as np; f = h5py.File('a.h5', 'r')
assert np.allclose(f['rollout'].attrs['noise_levels'], [0.7, 0.7 * 1.25, 0.7 * 1.5]), f['rollout'].attrs['noise_levels']
s = json.loads(f['rollout'].attrs['settings']); assert s['noise']['beta'] == 0.5 and 'reconstruction' in s
" 2>/dev/null && pass || fail "noise levels"
# The sliding window moves with the iteration.
tree-rollout "${base[@]}" --window-interval 2 --iteration 5 --json -o it.h5 | grep -q '"window_start":2' && pass || fail "window at iteration 5"
# Issue 15: the window ends before the last step under every rule. At iteration 150 of the
# defaults (T = 10, d = 4, tau = 25) it used to sit at l = 6, its children at step 10 of 10.
one=(--policy m.safetensors --prompts p.txt --seed 4 -q)
for rule in "--window-overflow rollback" "--window-overflow clamp" "--window-schedule random"; do
  tree-rollout "${one[@]}" --steps 10 --iteration 150 $rule --json --force -o w150.h5 >w150.json || fail "iteration 150 ($rule)"
  "$PYTHON" -c "
import h5py, json; f = h5py.File('w150.h5', 'r'); j = json.load(open('w150.json'))
l = int(f['rollout'].attrs['window_start']); steps = f['nodes/step'][:]
assert l + 4 <= 9 and j['window_start'] == l and steps.max() == l + 4 <= 9, (l, steps.max())
" && pass || fail "iteration 150 ($rule): children on the last step"
done
tree-rollout "${one[@]}" --steps 10 --iteration 150 --json --force -o w150.h5 | grep -q '"window_start":0' && pass || fail "iteration 150 rolls back to 0"
tree-rollout "${one[@]}" --steps 10 --iteration 150 --window-overflow clamp --json -o w150.h5 --force | grep -q '"window_start":5' \
  && pass || fail "iteration 150 clamps at 5"
# Issue 15: the noise depends on the iteration (same seed, fixed window): other leaves at another
# iteration, the same leaves at the same one.
for j in 0 1; do tree-rollout "${base[@]}" --window-schedule fixed --iteration $j -o it$j.h5 || fail "iteration $j"; done
tree-rollout "${base[@]}" --window-schedule fixed --iteration 1 -o it1b.h5 || fail "iteration 1 again"
"$PYTHON" -c "
import h5py, numpy as np
a, b, c = (h5py.File(n, 'r') for n in ('it0.h5', 'it1.h5', 'it1b.h5'))
assert a['rollout'].attrs['window_start'] == b['rollout'].attrs['window_start']
assert not np.array_equal(a['leaves/latent'][:], b['leaves/latent'][:])
assert not np.array_equal(a['nodes/noise_key'][:], b['nodes/noise_key'][:])
assert np.array_equal(b['leaves/latent'][:], c['leaves/latent'][:])
" && pass || fail "rollout noise does not depend on the iteration"
# Block noise (format 1.4): recorded in the file, and update replays it with ratio 1 (its replay
# check, on by default, refuses |rho - 1| > 1e-4 at the first minibatch).
tree-rollout "${base[@]}" --noise-block 4 -o b4.h5 && pass || fail "--noise-block 4"
"$PYTHON" - <<'PY' && pass || fail "noise_block recorded"
import h5py, numpy as np
f = h5py.File('b4.h5', 'r')
assert int(f['rollout'].attrs['noise_block'][0]) == 4 and list(f.attrs['treerpo_format_version']) == [1, 4]
assert int(h5py.File('a.h5', 'r')['rollout'].attrs['noise_block'][0]) == 1
PY
score --reward brightness b4.h5 -q | advantage - -q -o b4adv.h5 && update --policy m.safetensors b4adv.h5 --lambda 0 -q \
  --metrics b4.metrics -o b4.safetensors && pass || fail "update replays a block-noise rollout"
run_case bad-block 64 'noise-block 5: expected a divisor' -- tree-rollout --policy m.safetensors --prompts p.txt --noise-block 5 -o x.h5
run_case zero-block 64 'noise-block' -- tree-rollout --policy m.safetensors --prompts p.txt --noise-block 0 -o x.h5
# Bad options and inputs: one line, documented code, no output.
run_case depth-past-end 64 'window' -- tree-rollout --policy m.safetensors --prompts p.txt --steps 4 --depth 5 -o x.h5
run_case zero-branching 64 'branching' -- tree-rollout --policy m.safetensors --prompts p.txt --branching 0 -o x.h5
run_case bad-kernel 64 'kernel' -- tree-rollout --policy m.safetensors --prompts p.txt --kernel euler -o x.h5
run_case cps-last-step 64 'no noise' -- tree-rollout --policy m.safetensors --prompts p.txt --steps 4 --kernel cps --mode independent -o x.h5
run_case window-on-last-step 64 'window-start 6: .*l \+ d <= steps - 1' -- tree-rollout --policy m.safetensors --prompts p.txt --steps 10 --window-start 6 -o x.h5
run_case branching-in-window 64 'applies to --mode tree' -- tree-rollout --policy m.safetensors --prompts p.txt --mode window --branching 2 -o x.h5
run_case depth-independent 64 'does not apply' -- tree-rollout --policy m.safetensors --prompts p.txt --mode independent --depth 2 -o x.h5
run_case leaves-mismatch 64 'leaves' -- tree-rollout --policy m.safetensors --prompts p.txt --leaves 5 -o x.h5
run_case missing-prompts 66 'nope.txt' -- tree-rollout --policy m.safetensors --prompts nope.txt -o x.h5
run_case stride-zero 64 'ode-stride' -- tree-rollout --policy m.safetensors --prompts p.txt --ode-stride 0 -o x.h5
run_case stride-suffix 64 'store-suffix stores a state per schedule step' -- tree-rollout --policy m.safetensors --prompts p.txt --ode-stride 2 --store-suffix -o x.h5
run_case bad-solver 64 'ode-solver' -- tree-rollout --policy m.safetensors --prompts p.txt --ode-solver heun -o x.h5
run_case missing-model 66 'nope.safetensors' -- tree-rollout --policy nope.safetensors --prompts p.txt -o x.h5
run_case bad-model 65 'p.txt' -- tree-rollout --policy p.txt --prompts p.txt -o x.h5
[ ! -e x.h5 ] && pass || fail "a failed run left x.h5"
[ -z "$(ls -A . | grep tmp)" ] && pass || fail "temporary files left: $(ls)"
finish
