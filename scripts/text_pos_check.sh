#!/usr/bin/env bash
# text_pos_check.sh -- are the weak learned text positions why the model does not read word order?
# From POLICY, four arms of the same continued SFT on renders of the training split (update
# --objective sft, batch 32, lr LR (3e-4) after 50 warmup steps, constant, logit-normal sigma,
# SFT_STEPS (500) steps): "scaled" starts from POLICY with its text_pos multiplied by SCALE (8: row
# norm ~1 -> ~8, the word embeddings' is ~11), "plain" from POLICY unchanged, "layers" from POLICY
# with TEXT_LAYERS (2) text-encoder layers added (as treerpo-model init --text-layers has them)
# whose output projections start at zero, so that it starts as POLICY, and "nopool" as "scaled"
# but with the pooled text cut from the modulation (treerpo-model init --text-pool none: the
# text_pool tensors dropped), so that the prompt reaches the image only through the attention,
# where word order can matter. Each is then put
# through scripts/word_order_probe.sh and the held-out evaluation (67 x 8, 20 steps, guidance 3,
# seed 7). Files are kept in DIR and reused.
#
#   scripts/text_pos_check.sh POLICY DIR
# Prints one line per arm: arm, the probe's four figures (P strict, Q-as-P strict, pixel
# difference same seed, other seed), held-out strict and count match. BIN defaults to build/bin;
# needs /usr/bin/python3 with numpy and h5py. RENDERS (24000) sizes the renders; EVAL_SAMPLES (8),
# SAMPLES (probe, 8), HELDOUT_PROMPTS (file) shrink the evaluations.
set -euo pipefail
POLICY=$(realpath "$1") D=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(realpath "${BIN:-$SRC/build/bin}")  # absolute: the script changes directory
export BIN=$B
LR=${LR:-3e-4} SFT_STEPS=${SFT_STEPS:-500} SCALE=${SCALE:-8} TEXT_LAYERS=${TEXT_LAYERS:-2} RENDERS=${RENDERS:-24000} EVAL_SAMPLES=${EVAL_SAMPLES:-8}
HELDOUT_PROMPTS=${HELDOUT_PROMPTS:+$(realpath "$HELDOUT_PROMPTS")}
mkdir -p "$D"
cd "$D"
[ -f renders.h5 ] || "$B/treerpo-shapes" dataset --split train --count "$RENDERS" --seed 1 -o renders.h5 -q
if [ ! -f heldout.txt ]; then
  if [ -n "$HELDOUT_PROMPTS" ]; then cp "$HELDOUT_PROMPTS" heldout.txt
  else "$B/treerpo-shapes" prompts --split heldout -o heldout.txt -q; fi
fi
[ -f scaled-init.safetensors ] && [ -f layers-init.safetensors ] && [ -f nopool-init.safetensors ] || /usr/bin/python3 - "$POLICY" "$SCALE" "$TEXT_LAYERS" <<'PY'
# The three new arms' starting checkpoints, from POLICY:
# - scaled: its text_pos times SCALE, nothing else changed;
# - nopool: scaled, without the text_pool tensors and with the config's text_pool "none";
# - layers: POLICY plus TEXT_LAYERS text-encoder layers (the tensors of treerpo-model init
#   --text-layers, drawn here as torch.nn.Linear draws them) whose output projections (proj, fc2)
#   are zero: each layer starts as the identity, so the model starts as POLICY.
import json, struct, sys
import numpy as np
path, scale, layers = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
src = open(path, 'rb').read()
n = struct.unpack('<Q', src[:8])[0]
header = json.loads(src[8:8 + n])
if 'text_pos' not in header or header['text_pos']['dtype'] != 'F32':
    sys.exit(f"{path}: text_pos: missing or not float32 (a built-in model checkpoint with learned text positions was expected)")
meta = header.pop('__metadata__')
tensors = {k: np.frombuffer(src[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]], dtype=np.float32).reshape(v['shape'])
           for k, v in header.items()}
config = json.loads(meta['config'])
if config.get('text_layers', 0) or config.get('text_pool', 'mean') != 'mean':
    sys.exit(f"{path}: config: the policy already has text layers or no pooled text")

def write(name, tensors, meta):
    out_header, offset, blobs = {'__metadata__': meta}, 0, []
    for key in sorted(tensors):
        blob = np.ascontiguousarray(tensors[key]).tobytes()
        out_header[key] = {'dtype': 'F32', 'shape': list(tensors[key].shape), 'data_offsets': [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    head = json.dumps(out_header).encode()
    head += b' ' * (-len(head) % 8)
    with open(name + '.tmp', 'wb') as f:
        f.write(struct.pack('<Q', len(head)) + head + b''.join(blobs))

scaled = {**tensors, 'text_pos': tensors['text_pos'] * np.float32(scale)}
write('scaled-init.safetensors', scaled, meta)
write('nopool-init.safetensors', {k: v for k, v in scaled.items() if not k.startswith('text_pool.')},
      {**meta, 'config': json.dumps({**config, 'text_pool': 'none'})})
W, M = config['width'], config['width'] * config['mlp_ratio']
rng = np.random.default_rng(1)
grafted = dict(tensors)
def linear(name, fan_in, fan_out, zero):  # torch.nn.Linear's init, or zeros
    bound = 1 / np.sqrt(fan_in)
    for part, shape in (('weight', (fan_out, fan_in)), ('bias', (fan_out,))):
        grafted[f'{name}.{part}'] = (np.zeros(shape) if zero else rng.uniform(-bound, bound, shape)).astype(np.float32)
for k in range(layers):
    linear(f'text_encoder.{k}.qkv', W, 3 * W, False)
    linear(f'text_encoder.{k}.proj', W, W, True)
    linear(f'text_encoder.{k}.fc1', W, M, False)
    linear(f'text_encoder.{k}.fc2', M, W, True)
write('layers-init.safetensors', grafted, {**meta, 'config': json.dumps({**config, 'text_layers': layers})})
PY
for f in scaled-init layers-init nopool-init; do [ -f $f.safetensors ] || mv $f.safetensors.tmp $f.safetensors; rm -f $f.safetensors.tmp; done
for arm in scaled plain layers nopool; do
  init=$POLICY
  [ "$arm" = plain ] || init=$arm-init.safetensors
  [ -f "$arm.safetensors" ] || "$B/update" renders.h5 --objective sft --policy "$init" --steps "$SFT_STEPS" --batch-size 32 \
    --lr "$LR" --warmup 50 --lr-schedule constant --timestep-sampling logit-normal --seed 1 --threads 2 \
    --metrics "$arm.jsonl" -o "$arm.safetensors" -f -q
  [ -s "$arm.probe" ] || "$SRC/scripts/word_order_probe.sh" "$arm.safetensors" "probe-$arm" >"$arm.probe"
  [ -f "$arm.eval.json" ] || "$B/evaluate" --policy "$arm.safetensors" --prompts heldout.txt --samples "$EVAL_SAMPLES" \
    --steps 20 --guidance 3 --seed 7 --report "$arm.eval.json" --no-progress -q -f >/dev/null
  echo "$arm $(cat "$arm.probe") $(/usr/bin/python3 -c "import json, sys; p = json.load(open(sys.argv[1]))['policy']
print(f\"{p['metrics']['shapes']['mean']:.3f} {p['judge']['count_match']['mean']:.3f}\")" "$arm.eval.json")"
done
