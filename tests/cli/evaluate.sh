# evaluate.sh -- evaluate: the report validates against its schema, reruns are identical, the
# result does not depend on --max-batch, a checkpoint compared with itself differs by exactly 0,
# the grid is a PNG of the documented layout, and bad input fails cleanly with nothing written.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o a.safetensors -q
treerpo-model init --seed 2 --width 32 --depth 1 --heads 2 --image-size 16 -o b.safetensors -q
printf 'a red circle\nthree squares\na circle left of a triangle\nnot a shapes prompt\n' >p.txt
common=(--prompts p.txt --samples 3 --steps 4 --threads 1 --reward shapes --reward shapes-partial --reward brightness)
evaluate --policy a.safetensors "${common[@]}" --compare b.safetensors --guidance 2 --json --report r.json \
  --grid g.png --grid-samples 2 >j1.json 2>/dev/null && pass || fail "evaluate"
cmp -s j1.json r.json && pass || fail "--report differs from --json"
"$PYTHON" - "$SRC/schemas/evaluate-report-1.json" <<'PY' && pass || fail "report"
import json, sys, jsonschema
r = json.load(open('j1.json'))
jsonschema.validate(r, json.load(open(sys.argv[1])))
assert r['prompts']['count'] == 4 and r['sampling']['seed'] == '0'  # fixed default seed
assert [p['kind'] for p in r['per_prompt']] == ['colors', 'counting', 'position', 'other']
assert r['per_prompt'][3]['policy']['shapes'] == [0, 0, 0]  # outside the grammar
b = r['policy']['metrics']['brightness']
vals = [v for p in r['per_prompt'] for v in p['policy']['brightness']]
assert abs(b['mean'] - sum(vals) / len(vals)) < 1e-12
c = r['comparison']['brightness']
per_prompt = [sum(p['compare']['brightness']) / 3 - sum(p['policy']['brightness']) / 3 for p in r['per_prompt']]
assert abs(c['difference'] - sum(per_prompt) / 4) < 1e-12, c
assert c['ci_low'] <= c['difference'] <= c['ci_high'] and c['prompts'] == 4 and c['pairs'] == 12
assert set(c['per_kind']) == {'colors', 'counting', 'position', 'other'}
PY
# DPM-Solver++(2M) is named in the report and samples differently from Euler at the same steps
# (the base model: a freshly initialised one has zero velocity, which every solver integrates alike).
evaluate --policy "$SRC/models/shapes-base.safetensors" "${common[@]}" --ode-solver dpm2m --json >dpm.json 2>/dev/null \
  && pass || fail "dpm2m"
evaluate --policy "$SRC/models/shapes-base.safetensors" "${common[@]}" --json >euler.json 2>/dev/null && pass || fail "euler"
"$PYTHON" - "$SRC/schemas/evaluate-report-1.json" <<'PY' && pass || fail "solver in the report"
import json, sys, jsonschema
d, e = json.load(open('dpm.json')), json.load(open('euler.json'))
jsonschema.validate(d, json.load(open(sys.argv[1])))
assert d['sampling']['sampler'] == 'ode-dpm2m' and e['sampling']['sampler'] == 'ode-euler'
assert d['policy']['metrics']['brightness']['mean'] != e['policy']['metrics']['brightness']['mean']
PY
# The judge: renders count right; the judge figures are what the samples file's images give,
# recomputed here by an independent reader (h5py + numpy).
evaluate --policy a.safetensors "${common[@]}" --compare b.safetensors --guidance 2 --samples-out s.h5 -q >/dev/null \
  && pass || fail "--samples-out"
treerpo-inspect s.h5 | grep -q "treerpo samples 1.0" && pass || fail "inspect samples: $(treerpo-inspect s.h5 2>&1)"
treerpo-shapes explain s.h5 --images compare --json | "$PYTHON" -c "
import json, sys; j = json.load(sys.stdin)
assert j['images'] == 12 and sum(j['failures'].values()) == 12 and j['failures'].get('unparsed') == 3, j
" && pass || fail "explain a samples file"
treerpo-inspect --json s.h5 | "$PYTHON" -c "
import json, sys; j = json.load(sys.stdin)
assert j['counts'] == {'items': 12, 'prompts': 4} and [c['group'] for c in j['checkpoints']] == ['policy', 'compare']
" && pass || fail "inspect --json samples"
"$PYTHON" - <<'PY' && pass || fail "judge figures"
import json, h5py, numpy as np
r = json.load(open('j1.json'))
assert r['renders']['judge']['count_match']['mean'] == 0.75  # 3 of 4 prompts of the grammar, renders all right
with h5py.File('s.h5') as f:
    assert list(f['prompt_id'][:]) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] and list(f['sample'][:3]) == [0, 1, 2]
    assert [t.decode() if isinstance(t, bytes) else t for t in f['text'][:1]] == ['a red circle']
    for group, key in (('policy', 'policy'), ('compare', 'compare')):
        imgs = f[group + '/images'][:].astype(int)
        fg = []
        for im in imgs:
            mask = np.ones(im.shape[:2], bool); mask[1:-1, 1:-1] = False; border = im[mask]  # each border pixel once
            bg = np.array([sorted(border[:, c])[len(border) // 2] for c in range(3)])
            fg.append((np.abs(im - bg).max(axis=2) > 48).mean())
        assert abs(np.mean(fg) - r[key]['judge']['foreground']['mean']) < 1e-12, (group, np.mean(fg))
        d = []
        for p in range(4):
            x = imgs[3 * p:3 * p + 3] / 255.0
            d.append(np.mean([np.sqrt(((x[i] - x[k]) ** 2).mean()) for i in range(3) for k in range(i + 1, 3)]))
        assert abs(np.mean(d) - r[key]['judge']['diversity']['mean']) < 1e-9, (group, np.mean(d))
assert set(r['judge_comparison']) == {'count_match', 'foreground_gap', 'diversity'}
PY
# Reruns are identical; the batch size changes nothing but rounding.
evaluate --policy a.safetensors "${common[@]}" --compare b.safetensors --guidance 2 --json 2>/dev/null >j2.json
evaluate --policy a.safetensors "${common[@]}" --compare b.safetensors --guidance 2 --json --max-batch 2 2>/dev/null >j3.json
"$PYTHON" - <<'PY' && pass || fail "rerun or --max-batch changed the scores"
import json
a, b, c = (json.load(open(f)) for f in ('j1.json', 'j2.json', 'j3.json'))
assert a['per_prompt'] == b['per_prompt']
for p, q in zip(a['per_prompt'], c['per_prompt']):
    for k in ('policy', 'compare'):
        assert all(abs(x - y) < 2e-3 for x, y in zip(p[k]['brightness'], q[k]['brightness'])), (p, q)
PY
# A checkpoint against itself: every difference is exactly 0.
evaluate --policy a.safetensors "${common[@]}" --compare a.safetensors --json 2>/dev/null | "$PYTHON" -c "
import json, sys; r = json.load(sys.stdin)
for c in r['comparison'].values():
    assert c['difference'] == 0 and c['ci_low'] == 0 and c['ci_high'] == 0 and c['equal'] == 4, c
" && pass || fail "self-comparison"
# Another seed gives other samples.
evaluate --policy a.safetensors "${common[@]}" --seed 9 --json 2>/dev/null | "$PYTHON" -c "
import json, sys; r = json.load(sys.stdin); a = json.load(open('j1.json'))
assert r['per_prompt'][0]['policy']['brightness'] != a['per_prompt'][0]['policy']['brightness']
" && pass || fail "--seed ignored"
# The grid: 8-bit RGB PNG, wide enough for the labels and 2 x 2 cells of 32 pixels.
"$PYTHON" - <<'PY' && pass || fail "grid"
import struct
data = open('g.png', 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
w, h, depth, colour = struct.unpack('>IIBB', data[16:26])
assert depth == 8 and colour == 2 and w > 180 + 4 * 32 and h > 4 * 32, (w, h)
PY
# The table for people.
evaluate --policy a.safetensors "${common[@]}" -q >table.txt && grep -q '^all  *12 ' table.txt && pass || fail "table: $(cat table.txt)"
# Errors: one line, documented code, nothing written.
run_case missing-prompts 66 'nope.txt' -- evaluate --policy a.safetensors --prompts nope.txt
run_case missing-policy 66 'nope.safetensors' -- evaluate --policy nope.safetensors --prompts p.txt
: >empty.txt
run_case empty-prompts 65 'empty.txt: no prompts' -- evaluate --policy a.safetensors --prompts empty.txt
run_case unknown-reward 64 'pickscore' -- evaluate --policy a.safetensors --prompts p.txt --reward pickscore
before=$(md5sum g.png)
run_case grid-exists 64 'g.png' -- evaluate --policy a.safetensors "${common[@]}" --grid g.png
[ "$(md5sum g.png)" = "$before" ] && pass || fail "existing grid changed"
run_case bad-dir 73 'nodir' -- evaluate --policy a.safetensors "${common[@]}" --report nodir/r.json
[ ! -e nodir ] && pass || fail "bad-dir created something"
finish
