# text_pos.sh -- scripts/text_pos_check.sh on a tiny model: the scaled arm starts from exactly
# SCALE x the text positions (and nothing else changed), the layers arm from the model plus text
# layers that start as the identity, the nopool arm from the scaled one without pooled text, one
# line per arm, a rerun reuses its files.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --text-pos-embed learned -o m.safetensors -q
printf 'a red circle and a blue square\na circle\n' >h.txt
export RENDERS=60 SFT_STEPS=2 SAMPLES=1 EVAL_SAMPLES=1 SCALE=3 HELDOUT_PROMPTS=h.txt
BIN="$BIN" "$SRC/scripts/text_pos_check.sh" m.safetensors tp >out.txt 2>err.txt && pass || fail "check: $(cat err.txt)"
[ "$(grep -cE '^(scaled|plain|layers|nopool) [01]\.[0-9]{3} [01]\.[0-9]{3} [0-9.]+ nan [01]\.[0-9]{3} [01]\.[0-9]{3}$' out.txt)" = 4 ] \
  && pass || fail "one line per arm: $(cat out.txt)"
# The scaled arm starts from exactly SCALE x the text positions; the layers arm starts as the
# policy: its tensors, plus text layers whose output projections are 0.
"$PYTHON" - <<'PY' && pass || fail "the arms' inits"
import json, struct
import numpy as np
def read(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]], dtype=np.float32)
            for k, v in h.items() if k != '__metadata__'}, json.loads(h['__metadata__']['config'])
(a, _), (scaled, _), (b, config), (nopool, np_config) = (
    read(f) for f in ('m.safetensors', 'tp/scaled-init.safetensors', 'tp/layers-init.safetensors',
                      'tp/nopool-init.safetensors'))
assert set(a) == set(scaled) and np.array_equal(scaled['text_pos'], a['text_pos'] * np.float32(3))
assert all(np.array_equal(a[k], scaled[k]) for k in a if k != 'text_pos')
assert config['text_layers'] == 2 and all(np.array_equal(a[k], b[k]) for k in a)
new = set(b) - set(a)
assert new == {f'text_encoder.{k}.{p}.{w}' for k in range(2) for p in ('qkv', 'proj', 'fc1', 'fc2') for w in ('weight', 'bias')}
assert all(not b[k].any() for k in new if '.proj.' in k or '.fc2.' in k) and b['text_encoder.0.qkv.weight'].any()
assert np_config['text_pool'] == 'none' and set(nopool) == set(scaled) - {'text_pool.weight', 'text_pool.bias'}
assert all(np.array_equal(nopool[k], scaled[k]) for k in nopool)
PY
before=$(stat -c %Y tp/scaled.safetensors)
BIN="$BIN" "$SRC/scripts/text_pos_check.sh" m.safetensors tp >again.txt 2>&1
cmp -s out.txt again.txt && [ "$(stat -c %Y tp/scaled.safetensors)" = "$before" ] && pass || fail "rerun: $(cat again.txt)"
finish
