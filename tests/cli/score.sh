# score.sh -- score and advantage end to end: built-in, TorchScript and external-process rewards
# checked against values recomputed in Python; rewards added, refused twice, replaced with
# --force; the external program's failures (crash, timeout, wrong count, NaN) give clear errors
# and no output; latent-space files with --decoder; advantage rules recomputed independently in
# float64; pipes equal files; the stat-tracking state file.
source "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o m.safetensors -q
printf 'a red circle\nthree squares\na circle left of a triangle\n' >p.txt
tree-rollout --policy m.safetensors --prompts p.txt --steps 5 --depth 3 --seed 2 --threads 1 -q -o r.h5
score --reward shapes --reward brightness:0.5 --reward-module "$SRC/tests/data/mean_reward.pt:2" r.h5 -o s.h5 -q \
  && pass || fail "score"
h5diff --exclude-path /rewards --exclude-path /provenance r.h5 s.h5 >/dev/null && pass || fail "score changed more than /rewards"
"$PYTHON" - <<'PY' && pass || fail "reward values"
import h5py, json, numpy as np
f = h5py.File('s.h5', 'r')
img = f['leaves/image'][:].astype(np.float64)
assert sorted(f['rewards']) == ['brightness', 'mean_reward', 'shapes']
luma = (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]).mean(axis=(1, 2)) / 255
assert np.abs(f['rewards/brightness'][:] - luma).max() < 1e-5
assert np.abs(f['rewards/mean_reward'][:] - img.mean(axis=(1, 2, 3)) / 255).max() < 1e-5
assert f['rewards/brightness'].attrs['weight'] == 0.5 and f['rewards/mean_reward'].attrs['weight'] == 2
assert json.loads(f['rewards/mean_reward'].attrs['settings'])['source'] == 'torchscript'
assert set(np.unique(f['rewards/shapes'][:])) <= {0.0, 1.0}
PY
# Adding a reward keeps the others; the same name twice needs --force.
score --reward saturation s.h5 -o s2.h5 -q && "$PYTHON" -c "
import h5py; assert sorted(h5py.File('s2.h5', 'r')['rewards']) == ['brightness', 'mean_reward', 'saturation', 'shapes']
" && pass || fail "re-scoring adds"
run_case same-name 64 'rewards/shapes exists' -- score --reward shapes s.h5 -o x.h5
score --reward shapes:3 s.h5 -o s3.h5 --force -q && "$PYTHON" -c "
import h5py; f = h5py.File('s3.h5', 'r'); assert f['rewards/shapes'].attrs['weight'] == 3 and len(f['rewards']) == 3
" && pass || fail "--force replaces"
# The external reward process (the shipped example), checked against the formula in numpy.
score --reward-process "$PYTHON $SRC/schemas/example_reward_process.py" r.h5 -o x1.h5 -q && pass || fail "reward process"
"$PYTHON" - <<'PY' && pass || fail "colourfulness values"
import h5py, json, numpy as np
f = h5py.File('x1.h5', 'r')
img = f['leaves/image'][:].astype(np.float64)
rg = img[..., 0] - img[..., 1]; yb = 0.5 * (img[..., 0] + img[..., 1]) - img[..., 2]
c = (np.hypot(rg.std(axis=(1, 2)), yb.std(axis=(1, 2))) + 0.3 * np.hypot(rg.mean(axis=(1, 2)), yb.mean(axis=(1, 2)))) / 255
assert np.abs(f['rewards/colourfulness'][:] - c).max() < 1e-5
s = json.loads(f['rewards/colourfulness'].attrs['settings'])
assert s['source'] == 'process' and s['settings']['metric'] == 'hasler-suesstrunk-2003'
PY
ex="$PYTHON $SRC/schemas/example_reward_process.py"
run_case crash 75 'failing on purpose' -- score --reward-process "$ex --fail-after 0" r.h5 -o x.h5
run_case timeout 75 'no reply within' -- score --reward-process "$ex --sleep 5" --process-timeout 1 r.h5 -o x.h5
run_case wrong-count 65 'sent 23 scores for 24 images' -- score --reward-process "$ex --wrong-count" r.h5 -o x.h5
run_case nan-score 65 'non-finite' -- score --reward-process "$ex --nan" r.h5 -o x.h5
run_case no-program 66 'no-such-program' -- score --reward-process no-such-program -o x.h5 r.h5
run_case no-reward 64 'no reward' -- score r.h5 -o x.h5
run_case unknown-reward 64 'pickscore' -- score --reward pickscore r.h5 -o x.h5
[ ! -e x.h5 ] && pass || fail "a failed score left x.h5"
pgrep -f "example_reward_process.py --sleep 5" >/dev/null && fail "a reward process was left running" || pass
# A latent-space rollout (synthetic, 4x8x8, no images) is scored through --decoder.
treerpo-synth --count 2 --depth 2 --latent-shape 4,8,8 --no-images --seed 3 -o lat.h5 -q
run_case no-decoder 64 'give --decoder' -- score --reward brightness lat.h5 -o x.h5
score --reward brightness --decoder "$SRC/tests/data/toy_decoder.pt" lat.h5 -o latd.h5 -q && "$PYTHON" -c "
import h5py, numpy as np; f = h5py.File('latd.h5', 'r')
x = f['leaves/latent'][:]; img = np.round((np.tanh(x[:, 0:3] + 0.25 * x[:, 3:4]) + 1) * 127.5).clip(0, 255)
luma = (0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]).mean(axis=(1, 2)) / 255
assert np.abs(f['rewards/brightness'][:] - luma).max() < 2e-3, np.abs(f['rewards/brightness'][:] - luma).max()
" && pass || fail "decoder"

# advantage: every rule and both aggregations against a float64 reference written here.
for method in tree leaf sibling; do
  for agg in advantage reward; do
    advantage --method $method --aggregate $agg --clip 0 s.h5 -o a-$method-$agg.h5 -q || fail "advantage $method $agg"
  done
done
"$PYTHON" - <<'PY' && pass || fail "advantages differ from the float64 reference"
import h5py, numpy as np
def norm(v):
    v = np.asarray(v, dtype=np.float64); s = v.std()
    return np.zeros_like(v) if s < 1e-6 else (v - v.mean()) / (s + 1e-8)
for method in ('tree', 'leaf', 'sibling'):
    for agg in ('advantage', 'reward'):
        f = h5py.File('a-%s-%s.h5' % (method, agg), 'r')
        parent, prompt, depth = f['nodes/parent'][:], f['nodes/prompt'][:], f['nodes/depth'][:]
        leaf_node = f['leaves/node'][:]
        rewards = {k: (f['rewards'][k][:].astype(np.float64), f['rewards'][k].attrs['weight']) for k in f['rewards']}
        N = len(parent)
        below = [[] for _ in range(N)]  # leaves below each node
        for g, n in enumerate(leaf_node):
            while n >= 0:
                below[n].append(g); n = parent[n]
        def edges(r):
            out = np.full(N, np.nan)
            if method == 'leaf':
                a = np.zeros(len(r))
                for p in np.unique(prompt):
                    gs = [g for g in range(len(r)) if prompt[leaf_node[g]] == p]; a[gs] = norm(r[gs])
                for n in range(N):
                    if parent[n] >= 0: out[n] = a[below[n]].mean()
                return out
            value = np.array([r[below[n]].mean() for n in range(N)])
            groups = {}
            for n in range(N):
                if parent[n] >= 0:
                    groups.setdefault((prompt[n], depth[n]) if method == 'tree' else parent[n], []).append(n)
            for ns in groups.values(): out[ns] = norm(value[ns])
            return out
        if agg == 'advantage':
            want = sum(w * edges(r) for r, w in rewards.values())
        else:
            want = edges(sum(w * r for r, w in rewards.values()))
        got = f['advantages/edge'][:]
        assert np.allclose(got, want, atol=1e-5, equal_nan=True), (method, agg, np.nanmax(np.abs(got - want)))
        assert f['advantages'].attrs['method'] == method
PY
# Pipes equal files: rollout | score | advantage.
tree-rollout --policy m.safetensors --prompts p.txt --steps 5 --depth 3 --seed 2 --threads 1 -q -o - \
  | score --reward shapes --reward brightness:0.5 --reward-module "$SRC/tests/data/mean_reward.pt:2" -q -o - \
  | advantage --clip 0 --method tree --aggregate advantage -q -o piped.h5 && same_content piped.h5 a-tree-advantage.h5 \
  && pass || fail "the pipeline differs from the files"
# Window rollouts: the trajectory rule, whatever --method says.
tree-rollout --policy m.safetensors --prompts p.txt --mode window --leaves 4 --steps 5 --depth 2 --seed 2 -q -o w.h5
score --reward brightness w.h5 -q | advantage --method sibling -q -o wa.h5 && "$PYTHON" -c "
import h5py, numpy as np; f = h5py.File('wa.h5', 'r')
assert f['advantages'].attrs['method'] == 'trajectory'
e, par, node, r = f['advantages/edge'][:], f['nodes/parent'][:], f['leaves/node'][:], f['rewards/brightness'][:]
for p in range(3):
    g = r[4 * p:4 * p + 4].astype(float); a = (g - g.mean()) / (g.std() + 1e-8)
    for j, n in enumerate(node[4 * p:4 * p + 4]):
        while par[n] >= 0:
            assert abs(e[n] - a[j]) < 1e-5; n = par[n]
" && pass || fail "window trajectory rule"
# Stat tracking: the state file appears, accumulates, and is refused with the tree rule.
advantage --method leaf --stat-tracking st.json s.h5 -o t1.h5 -q && advantage --method leaf --stat-tracking st.json s.h5 -o t2.h5 -q \
  && "$PYTHON" -c "
import json; s = json.load(open('st.json'))
assert s['format'] == 'treerpo-stat-tracking' and s['rewards']['shapes']['a red circle']['n'] == 16, s
" && pass || fail "stat tracking"
run_case stat-tree 64 'leaf rule' -- advantage --stat-tracking st.json s.h5 -o x.h5
run_case no-rewards 65 'score the file first' -- advantage r.h5 -o x.h5
# A NaN reward in a file (written by another tool) is refused with the reward's name.
"$PYTHON" -c "
import h5py, numpy as np, shutil; shutil.copy('s.h5', 'nan.h5'); f = h5py.File('nan.h5', 'r+')
d = f['rewards/brightness']; v = d[:]; v[3] = np.nan; d[...] = v
" && run_case nan-reward 65 'rewards/brightness: leaf 3' -- advantage nan.h5 -o x.h5 || fail "could not write nan.h5"
run_case unknown-weight 64 'no reward of that name' -- advantage --weight pickscore=2 s.h5 -o x.h5
[ ! -e x.h5 ] && pass || fail "a failed advantage left x.h5"
finish
