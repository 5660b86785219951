# model.sh -- treerpo-model: checkpoints that independent readers open, info, export, errors.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 2 --heads 2 -o m.safetensors -q && pass || fail "init"
treerpo-model init --seed 1 --width 32 --depth 2 --heads 2 -o m2.safetensors -q
cmp -s m.safetensors m2.safetensors && fail "provenance time should differ without SOURCE_DATE_EPOCH" || true
mkdir r1 r2
(cd r1 && SOURCE_DATE_EPOCH=1 treerpo-model init --seed 1 --width 32 --depth 2 --heads 2 -o m.safetensors -q)
(cd r2 && SOURCE_DATE_EPOCH=1 treerpo-model init --seed 1 --width 32 --depth 2 --heads 2 -o m.safetensors -q)
cmp -s r1/m.safetensors r2/m.safetensors && pass || fail "same seed, different bytes"
"$PYTHON" "$SRC/tests/unit/read_safetensors.py" m.safetensors patch_embed.weight:32,48 blocks.1.img_qkv.weight:96,32 >/dev/null \
  && pass || fail "independent safetensors reader"
"$PYTHON" - <<'PY' && pass || fail "checkpoint metadata"
import json, struct
blob = open('m.safetensors', 'rb').read()
(n,) = struct.unpack('<Q', blob[:8])
meta = json.loads(blob[8:8 + n])['__metadata__']
assert meta['treerpo_model'] == 'builtin-dit'
assert json.loads(meta['config'])['width'] == 32
vocab = json.loads(meta['vocabulary'])
assert vocab[:3] == ['<pad>', '<null>', '<unk>'] and 'circle' in vocab
assert json.loads(meta['provenance'])['tool'] == 'treerpo-model'
PY
treerpo-model info --policy m.safetensors --json >info.json && pass || fail "info"
digest=$("$PYTHON" -c "import json; print(json.load(open('info.json'))['digest'])")
grep -q "\"digest\":\"$digest\"" <(tr -d ' \n' <info.json) && [ -n "$digest" ] && pass || fail "digest"
"$PYTHON" -c "
import json; j = json.load(open('info.json'))
assert j['kind'] == 'builtin-dit' and j['latent_shape'] == [3, 32, 32] and j['parameters'] > 0, j
" && pass || fail "info fields"
treerpo-model export --policy m.safetensors --trainable '^final_' -o final.safetensors -q && pass || fail "export"
"$PYTHON" "$SRC/tests/unit/read_safetensors.py" final.safetensors final_out.weight:256,32 final_mod.bias:64 >/dev/null \
  && pass || fail "exported tensors"
# The denoising probe of the shipped model: x0_hat = x_s - s v of held-out renders. Shipped model
# (depth 8 with 2 text layers, 16 renders): 0.0023 / 0.0137 / 0.0714 (depth 8 without: 0.0025 / 0.0130 / 0.0729; depth 4: 0.0027 / 0.0159 / 0.0723; 1.1: 0.0039 / 0.0195 /
# 0.0739); the pre-1.1 model that painted 4x4 patches: 0.032 at 0.6.
treerpo-model probe --policy "$SRC/models/shapes-base.safetensors" --count 16 --grid probe.png --json >probe.json \
  && pass || fail "probe"
"$PYTHON" -c "
import json; p = json.load(open('probe.json'))['probe']
assert [r['sigma'] for r in p] == [0.3, 0.6, 0.9], p
m = [r['mse'] for r in p]
assert m[0] < m[1] < m[2] and m[0] < 0.0035 and m[1] < 0.016, m
assert open('probe.png', 'rb').read(8) == b'\\x89PNG\\r\\n\\x1a\\n'
" && pass || fail "probe figures: $(cat probe.json)"
run_case missing 66 'nope\.safetensors' -- treerpo-model info --policy nope.safetensors
printf 'junk' >junk.bin
run_case junk 65 'junk\.bin: not a policy' -- treerpo-model info --policy junk.bin
run_case no-match 64 "matches no parameter" -- treerpo-model export --policy m.safetensors --trainable zzz -o z.safetensors
run_case seed-info 64 '--seed applies to init and probe only' -- treerpo-model info --policy m.safetensors --seed 2
run_case bad-config 64 'width must be a multiple of heads' -- treerpo-model init --width 30 --heads 4 -o b.safetensors
[ ! -e z.safetensors ] && [ ! -e b.safetensors ] && pass || fail "failed runs left outputs"
finish
