# h5py.sh -- an independent reader (Debian's python3-h5py + numpy, with our zstd plugin on
# HDF5_PLUGIN_PATH) checks the values, not only that the file opens; h5dump reads it too.
source "$(dirname "$0")/lib.sh"
: "${HDF5_PLUGIN_PATH:?the zstd filter plugin directory}"
treerpo-synth --count 3 --seed 11 --steps 8 --depth 3 --branching 3,2,2 --window-start 2 --velocity \
  --conditioning 4,6 -o f32.h5 -q || fail "synth f32"
treerpo-synth --count 3 --seed 11 --steps 8 --depth 3 --branching 3,2,2 --window-start 2 --velocity \
  --conditioning 4,6 --latent-dtype float16 -o f16.h5 -q || fail "synth f16"

"$PYTHON" - <<'PY' && pass || fail "values read by h5py"
import h5py, numpy as np, math, json
a, b = h5py.File('f32.h5', 'r'), h5py.File('f16.h5', 'r')
assert a.attrs['treerpo_format'] == 'trajectory' and list(a.attrs['treerpo_format_version']) == [1, 4]
r = a['rollout']
# 1.4 records the SDE noise block; synth writes isotropic noise
assert r.attrs['noise_block'].dtype == np.int64 and int(r.attrs['noise_block'][0]) == 1
assert r.attrs['seed'].dtype == np.uint64 and int(r.attrs['seed'][0]) == 11 and float(r.attrs['guidance'][0]) == 1.0
T, shift, l = int(r.attrs['steps'][0]), float(r.attrs['shift'][0]), int(r.attrs['window_start'][0])
branching = [int(x) for x in r.attrs['branching']]
u = 1 - np.arange(T + 1) / T
assert np.allclose(r['sigmas'][:], shift * u / (1 + (shift - 1) * u), rtol=0, atol=1e-15)
assert b['nodes/latent'].dtype == np.float16 and a['nodes/latent'].dtype == np.float32
assert b['nodes/log_prob'].dtype == np.float64
kinds = h5py.check_enum_dtype(a['nodes/kind'].dtype)
assert kinds == {'trunk': 0, 'branch': 1, 'leaf': 2}, kinds
prompt, parent, kind = a['nodes/prompt'][:], a['nodes/parent'][:], a['nodes/kind'][:]
depth, step = a['nodes/depth'][:], a['nodes/step'][:]
lat, lp, std = a['nodes/latent'][:].astype(np.float64), a['nodes/log_prob'][:], a['nodes/noise_std'][:]
sig = r['sigmas'][:]
per_prompt = 1 + 3 + 6 + 12
assert len(prompt) == 3 * per_prompt and list(np.bincount(prompt)) == [per_prompt] * 3
assert [t.decode() if isinstance(t, bytes) else t for t in a['prompts/text'][:]] == [f'synthetic prompt {i}' for i in range(3)]
assert a['prompts/conditioning'].shape == (3, 4, 6)
for i in range(len(prompt)):
    p = parent[i]
    if p < 0:
        assert kind[i] == 0 and depth[i] == 0 and step[i] == l and math.isnan(lp[i])
        continue
    assert p < i and prompt[p] == prompt[i] and depth[i] == depth[p] + 1 and step[i] == step[p] + 1
    assert kind[i] == (2 if depth[i] == 3 else 1)
    # Independent float64 recomputation of the stored log-probability of the draw.
    s0, s1 = sig[step[p]], sig[step[p] + 1]
    step_std = float(std[i])
    eps = (lat[i] - lat[p]) / step_std
    want = np.mean(-0.5 * eps ** 2) - math.log(step_std) - 0.5 * math.log(2 * math.pi)
    assert abs(want - lp[i]) < 2e-4 * max(1, abs(want)), (i, want, lp[i])
    sigma_t = sig[1] if s0 == 1 else s0   # first-step rule of ALGORITHM.md section 2
    a_k = 0.7 * (1 + 0.5 * (depth[i] - 1) / 2)
    assert abs(std[i] - a_k * math.sqrt(s0 / (1 - sigma_t)) * math.sqrt(s0 - s1)) < 1e-5 * std[i]
# float16 latents are the IEEE binary16 values numpy rounds to (round half to even).
roots = parent < 0
assert np.array_equal(b['nodes/latent'][:][roots], a['nodes/latent'][:][roots].astype(np.float16))
leaf_nodes = a['leaves/node'][:]
assert all(kind[leaf_nodes] == 2) and len(leaf_nodes) == 3 * 12
assert a['leaves/image'].dtype == np.uint8 and a['leaves/image'].shape == (36, 32, 32, 3)
nfe = l + sum(int(np.prod(branching[:k])) for k in range(3)) + 12 * (T - l - 3)
assert list(a['statistics/nfe'][:]) == [nfe] * 3 and int(a['statistics'].attrs['nfe_total'][0]) == 3 * nfe
dl = a['nodes/latent']
assert dl._filters.get('32015') == (3,) and dl.fletcher32 and dl.shuffle  # zstd level 3
assert dl.chunks[0] < dl.shape[0]
rec = json.loads(a['provenance'][0])
assert rec['tool'] == 'treerpo-synth' and rec['seed'] == '11'
PY

# h5dump decompresses through the plugin as well.
h5dump -d /nodes/noise_std -s 1 -c 1 f32.h5 >dump.txt 2>&1 && grep -q 'DATA' dump.txt && pass || fail "h5dump: $(head -5 dump.txt)"
# Without the plugin path the file cannot be decompressed by a plain reader: the plugin is what works.
HDF5_PLUGIN_PATH=/nonexistent h5dump -d /nodes/noise_std f32.h5 >/dev/null 2>&1 && fail "h5dump read zstd data without the plugin" || pass
finish
