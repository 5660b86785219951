# update_rl.sh -- RL with `update` on rollout -> score -> advantage files: ratio = 1 and nothing
# clipped at the first minibatch, metrics lines, inputs untouched, the model-digest and replay
# checks (error, or warning on request), a resumed update equal to an uninterrupted one, refused
# inputs and options, the NFT objective, and data parallelism: two processes on loopback equal one process, and a
# rank that never joins or dies makes the other fail within its timeout instead of hanging.
source "$(dirname "$0")/lib.sh"
# The shipped base model, scored by brightness and saturation (continuous): its leaves differ in
# reward, so the advantages (and gradients) are not 0.
cp "$SRC/models/shapes-base.safetensors" base.safetensors
printf '%s\n' "a red circle" "two blue squares" "a green triangle above a red circle" > p.txt
tree-rollout --policy base.safetensors --prompts p.txt --steps 5 --depth 2 --guidance 3 --seed 4 --threads 1 -o r.h5 -q
score --reward brightness --reward saturation:0.5 r.h5 -o s.h5 -q
advantage s.h5 -o a.h5 -q
before=$(sha256sum a.h5)
common=(a.h5 --minibatch 8 --threads 1 --lr 1e-3)
digest() { treerpo-model info --policy "$1" --json | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['digest'])"; }

update --policy base.safetensors "${common[@]}" --epochs 2 --metrics m.jsonl --export lora.safetensors \
  -o full.safetensors -q && pass || fail "update"
[ "$(sha256sum a.h5)" = "$before" ] && pass || fail "the input changed"
[ "$(digest full.safetensors)" != "$(digest base.safetensors)" ] && pass || fail "the update changed nothing"
[ -s lora.safetensors ] && pass || fail "--export wrote nothing"
"$PYTHON" - <<'PY' && pass || fail "metrics"
import json
rows = [json.loads(l) for l in open('m.jsonl')]
mb, summary = rows[:-1], rows[-1]
# 3 prompts x (2 + 4) edges = 18 edges: 3 minibatches of <= 8, two epochs.
assert [r['minibatch'] for r in mb] == [1, 2, 3, 4, 5, 6], mb
assert mb[0]['max_ratio_dev'] < 1e-5 and mb[0]['clip_fraction'] == 0, mb[0]
assert sum(r['edges'] for r in mb) == 36
assert all({'loss_grpo', 'loss_sft', 'loss_kl', 'lambda', 'ratio_dev', 'clip_fraction', 'approx_kl', 'grad_norm'} <= set(r) for r in mb)
assert mb[-1]['ratio_dev'] > mb[0]['ratio_dev']  # the weights moved
assert summary['update'] and summary['objective'] == 'layertuning' and summary['lambda'] == 0.1, summary
assert set(summary['rewards']) == {'brightness', 'saturation'} and summary['replay_max_ratio_dev'] < 1e-5, summary
# Issue 15: each loss term's gradient norm and share at every optimizer step, shares summing to 1.
assert mb[0]['grad_norm_grpo'] > 0, mb[0]  # later minibatches may have every edge clipped
for r in mb:
    assert r['grad_norm_grpo'] >= 0 and r['grad_norm_sft'] > 0 and 'grad_norm_kl' not in r, r
    assert abs(r['grad_share_grpo'] + r['grad_share_sft'] - 1) < 1e-6, r
    assert 0 <= r['clip_fraction'] <= r['outside_fraction'] <= 1, r
assert set(summary['terms']) == {'grpo', 'sft'} and summary['health'] == [], summary
print('gradient shares at the defaults: grpo %.3f, sft %.3f; norms grpo %.3g, sft %.3g' % (
    summary['terms']['grpo']['grad_share'], summary['terms']['sft']['grad_share'],
    summary['terms']['grpo']['grad_norm'], summary['terms']['sft']['grad_norm']))
PY
"$PYTHON" - <<'PY' && pass || fail "checkpoint metadata"
import json, struct
blob = open('full.safetensors', 'rb').read()
(n,) = struct.unpack('<Q', blob[:8])
meta = json.loads(blob[8:8 + n])['__metadata__']
t = json.loads(meta['training'])
assert t['objective'] == 'layertuning' and t['step'] == 6 and t['minibatches_done'] == 6 == t['minibatches_total'], t
p = json.loads(meta['provenance'])
assert p['tool'] == 'update' and p['inputs'][0]['path'] == 'a.h5', p
PY

# Trajectories from other weights: refused by their model digest, or trained on with a warning
# (and the replay check then measures how far off they are).
run_case other-weights 65 "a.h5: /rollout model_digest sha256:[0-9a-f]+ is not the policy's" -- \
  update --policy full.safetensors "${common[@]}" -o x.safetensors
update --policy full.safetensors "${common[@]}" --on-mismatch warn -o warned.safetensors 2>warn.err \
  && pass || fail "--on-mismatch warn: $(cat warn.err)"
grep -q "replay check failed: recomputed log-probabilities give max |rho - 1| = " warn.err && pass || fail "replay warning: $(cat warn.err)"
# A deliberate weight change that keeps the recorded digest: the replay check alone trips.
"$PYTHON" - <<'PY'
import h5py
with h5py.File('a.h5', 'r') as f, h5py.File('forged.h5', 'w') as g:
    for k in f.attrs: g.attrs[k] = f.attrs[k]
    for k in f: f.copy(k, g)
    import subprocess, json
    d = json.loads(subprocess.run(['treerpo-model', 'info', '--policy', 'full.safetensors', '--json'], capture_output=True, text=True).stdout)['digest']
    g['rollout'].attrs['model_digest'] = d
PY
run_case replay 65 "forged.h5: /nodes/log_prob: replay check failed: .*max \|rho - 1\| = [0-9.e+-]+ at the first minibatch \(tolerance" -- \
  update --policy full.safetensors forged.h5 --minibatch 8 --threads 1 -o x.safetensors
[ ! -e x.safetensors ] && pass || fail "a refused update left a checkpoint"

# A resumed update equals an uninterrupted one.
# The seed in use is logged once, with where it came from (issue 16): the rollout's, then the checkpoint's.
update --policy base.safetensors "${common[@]}" --epochs 2 --until 3 -o half.safetensors -v 2>half.err \
  && [ "$(grep -c 'seed: ' half.err)" = 1 ] && grep -q 'seed: 4 (the rollout)' half.err && pass || fail "first part"
update --policy half.safetensors "${common[@]}" --epochs 2 -o resumed.safetensors -v 2>resumed.err \
  && [ "$(grep -c 'seed: ' resumed.err)" = 1 ] && grep -q 'seed: 4 (the checkpoint, stopped mid-update)' resumed.err \
  && pass || fail "resume"
[ "$(digest full.safetensors)" = "$(digest resumed.safetensors)" ] && pass || fail "resumed update differs"
run_case resume-iteration 64 'stopped mid-update at iteration 0; resume with that --iteration' -- \
  update --policy half.safetensors "${common[@]}" --epochs 2 --iteration 3 -o x.safetensors
run_case resume-seed 64 'stopped mid-update with seed 4; resume with that seed' -- \
  update --policy half.safetensors "${common[@]}" --epochs 2 --seed 5 -o x.safetensors

# SIGTERM mid-update: the optimizer step in progress finishes, a resumable checkpoint is written,
# exit 143; resuming it finishes the update.
update --policy base.safetensors a.h5 --minibatch 1 --epochs 30 --threads 1 -o stopped.safetensors -q 2>term.err &
pid=$!
wait_for_handler "$pid" TERM
sleep 3
kill -TERM $pid
wait $pid
rc=$?
[ "$rc" = 143 ] && pass || fail "SIGTERM exit $rc: $(cat term.err)"
grep -q 'resumable checkpoint written to stopped.safetensors at minibatch' term.err && pass || fail "message: $(cat term.err)"
update --policy stopped.safetensors a.h5 --minibatch 1 --epochs 30 --threads 1 --json -o finished.safetensors -q \
  | grep -q '"minibatches":540,"minibatches_total":540' && pass || fail "resuming the stopped update"

# Objectives and options.
update --policy base.safetensors "${common[@]}" --objective grpo --json -o grpo.safetensors -q | grep -q '"objective":"grpo"' \
  && pass || fail "grpo"
update --policy base.safetensors "${common[@]}" --kl-weight 0.5 --reference base.safetensors --metrics kl.jsonl -o kl.safetensors -q \
  && pass || fail "kl"
# NFT (issue 17): flow matching on the leaves, 3 prompts x 4 leaves x 2 noise levels = 24 items in
# minibatches of 8; no edges and no replay; a resumed NFT update equals an uninterrupted one (its
# old velocities travel in the stopped checkpoint); the edge objectives' options are refused.
nft=(a.h5 --objective nft --nft-timesteps 2 --nft-beta 0.5 --nft-scale 2 --minibatch 8 --threads 1 --lr 1e-3)
update --policy base.safetensors "${nft[@]}" --metrics nft.jsonl --json -o nft.safetensors -q > nft.json \
  && pass || fail "nft"
"$PYTHON" - <<'PY' && pass || fail "nft metrics"
import json
rows = [json.loads(l) for l in open('nft.jsonl')]
mb, summary = rows[:-1], rows[-1]
assert [r['sft_items'] for r in mb] == [8, 8, 8] and all(r['edges'] == 0 for r in mb), mb
assert summary['objective'] == 'nft' and summary['sft_items'] == 24 and summary['replay_max_ratio_dev'] == -1, summary
assert summary['loss'] == summary['loss_sft'] > 0 and set(summary['terms']) == {'sft'}, summary
assert json.load(open('nft.json'))['objective'] == 'nft'
PY
[ "$(digest nft.safetensors)" != "$(digest base.safetensors)" ] && pass || fail "nft changed nothing"
update --policy base.safetensors "${nft[@]}" --until 1 -o nft-half.safetensors -q && \
  update --policy nft-half.safetensors "${nft[@]}" -o nft-resumed.safetensors -q && pass || fail "nft resume"
[ "$(digest nft.safetensors)" = "$(digest nft-resumed.safetensors)" ] && pass || fail "resumed nft update differs"
update --policy base.safetensors "${nft[@]}" --kl-weight 2 --reference base.safetensors --json -o nft-kl.safetensors -q \
  | "$PYTHON" -c "import json,sys; s=json.load(sys.stdin); assert s['loss_kl'] > 0 and set(s['terms']) == {'sft', 'kl'}, s" \
  && pass || fail "nft with a KL term"
run_case nft-eta 64 'eta applies to the edge objectives grpo and layertuning \(the objective is nft\)' -- \
  update --policy base.safetensors "${nft[@]}" --eta 0 -o x.safetensors
run_case nft-lambda 64 'lambda applies to --objective layertuning \(the objective is nft\)' -- \
  update --policy base.safetensors "${nft[@]}" --lambda 0 -o x.safetensors
run_case nft-beta-grpo 64 'nft-beta applies to --objective nft \(the objective is grpo\)' -- \
  update --policy base.safetensors a.h5 --objective grpo --nft-beta 2 -o x.safetensors
run_case nft-no-advantages 65 's.h5: no /advantages: run `advantage`' -- \
  update --policy base.safetensors s.h5 --objective nft -o x.safetensors

"$PYTHON" -c "
import json
rows = [json.loads(l) for l in open('kl.jsonl')][:-1]
assert rows[0]['loss_kl'] == 0 and rows[-1]['loss_kl'] > 0, rows
" && pass || fail "KL to the reference: 0 before the weights move, > 0 after"
# Issue 15: a non-finite reward is bad data naming the file and the dataset (was exit 70).
"$PYTHON" -c "
import h5py, shutil; shutil.copy('a.h5', 'nan.h5')
with h5py.File('nan.h5', 'r+') as f: v = f['rewards/brightness']; x = v[:]; x[1] = float('nan'); v[...] = x
"
run_case nan-reward 65 'nan.h5: /rewards/brightness: leaf 1 is nan \(a finite reward expected\)' -- \
  update --policy base.safetensors nan.h5 -o x.safetensors
# Issue 15: health checks. Advantages all 0: a warning recorded in the metrics and provenance,
# or with --strict-health a refusal (exit 65, no checkpoint).
"$PYTHON" -c "
import h5py, numpy as np, shutil; shutil.copy('a.h5', 'zero.h5')
with h5py.File('zero.h5', 'r+') as f: v = f['advantages/edge']; x = v[:]; x[np.isfinite(x)] = 0; v[...] = x
"
update --policy base.safetensors zero.h5 --objective grpo --minibatch 8 --threads 1 --metrics zero.jsonl \
  -o zero.safetensors 2>zero.err && pass || fail "zero advantages: $(cat zero.err)"
grep -q 'update: warning: zero.h5: the advantages are all near zero' zero.err && pass || fail "no warning: $(cat zero.err)"
grep -q 'the gradient norm is zero at optimizer step' zero.err && pass || fail "no grad-norm warning: $(cat zero.err)"
"$PYTHON" - <<'PY' && pass || fail "health in metrics and provenance"
import json, struct
summary = [json.loads(l) for l in open('zero.jsonl')][-1]
checks = {h['check'] for h in summary['health']}
assert {'zero-advantages', 'zero-grad-norm'} <= checks, summary['health']
blob = open('zero.safetensors', 'rb').read()
(n,) = struct.unpack('<Q', blob[:8])
p = json.loads(json.loads(blob[8:8 + n])['__metadata__']['provenance'])
assert any(h.startswith('zero-advantages: zero.h5: ') for h in p['health']), p
PY
run_case strict-health 65 'zero.h5: health check failed \(--strict-health\): the advantages are all near zero' -- \
  update --policy base.safetensors zero.h5 --strict-health -o x.safetensors
"$PYTHON" -c "
import h5py, shutil; shutil.copy('a.h5', 'flat.h5')
import numpy as np
with h5py.File('flat.h5', 'r+') as f:
    for k in list(f['rewards']):
        v = f['rewards'][k]; attrs = dict(v.attrs); n = v.shape
        del f['rewards'][k]
        w = f['rewards'].create_dataset(k, data=np.full(n, 0.5, np.float32))
        for a, x in attrs.items(): w.attrs[a] = x
" || fail "making flat.h5"
advantage flat.h5 --json -o flat.adv.h5 2>flat.err >flat.json && pass || fail "advantage on flat rewards: $(cat flat.err)"
grep -q 'advantage: warning: flat.h5: most groups have zero reward spread: 3 of 3 prompts' flat.err && pass || fail "advantage health: $(cat flat.err)"
grep -q '"check":"zero-reward-spread"' flat.json && pass || fail "advantage --json health: $(cat flat.json)"
run_case advantage-strict 65 'flat.h5: health check failed \(--strict-health\): most groups have zero reward spread' -- \
  advantage flat.h5 --strict-health -o x.h5
[ ! -e x.h5 ] && pass || fail "a refused advantage run left its output"
run_case sft-velocity-target 64 'sft-velocity applies to --sft-target best-leaf' -- \
  update --policy base.safetensors a.h5 --sft-target velocity --sft-velocity guided -o x.safetensors
# Guidance 3 (this rollout's): the guided best-leaf target and training through v_u both run.
update --policy base.safetensors "${common[@]}" --epochs 2 --sft-velocity guided --train-uncond -o guided.safetensors -q \
  && pass || fail "--sft-velocity guided --train-uncond"
[ "$(digest guided.safetensors)" != "$(digest full.safetensors)" ] && pass || fail "the options changed nothing"
run_case no-advantages 65 's.h5: no /advantages: run `advantage`' -- update --policy base.safetensors s.h5 -o x.safetensors
run_case no-velocity 65 'a.h5: no /nodes/velocity' -- update --policy base.safetensors a.h5 --sft-target velocity -o x.safetensors
run_case sft-on-trajectories 64 'objective sft trains on data set files' -- \
  update --policy base.safetensors a.h5 --objective sft -o x.safetensors
run_case sft-option 64 'update: error: --steps applies to SFT' -- update --policy base.safetensors a.h5 --steps 3 -o x.safetensors
run_case lambda-grpo 64 'lambda applies to --objective layertuning' -- \
  update --policy base.safetensors a.h5 --objective grpo --lambda 0.2 -o x.safetensors
run_case kl-no-reference 64 'kl-weight needs --reference' -- update --policy base.safetensors a.h5 --kl-weight 1 -o x.safetensors
treerpo-model init --seed 1 --width 32 --depth 2 --heads 2 --image-size 16 -o small.safetensors -q
run_case other-shape 65 'a.h5: /rollout latent_shape \[3, 32, 32\] differs from the policy.s \[3, 16, 16\]' -- \
  update --policy small.safetensors a.h5 -o x.safetensors
run_case exists 64 'full.safetensors: output exists' -- update --policy base.safetensors a.h5 -o full.safetensors
treerpo-shapes dataset --count 8 --seed 2 -o d.h5 -q
run_case sft-ranks 64 'SFT runs in one process, but this one is rank 1 of 2' -- \
  env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 update --policy base.safetensors d.h5 --steps 1 -o x.safetensors
run_case mixed-inputs 64 'inputs mix data set files and trajectory files' -- \
  update --policy base.safetensors a.h5 d.h5 -o x.safetensors
run_case rl-on-dataset 64 'objective grpo trains on trajectory files' -- \
  update --policy base.safetensors d.h5 --objective grpo -o x.safetensors

# Data parallelism: two ranks on loopback equal one process with the same global minibatch.
port=$((20000 + $$ % 20000))
dp() { env RANK=$1 WORLD_SIZE=2 LOCAL_RANK=$1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "${@:2}"; }
dp 0 update --policy base.safetensors "${common[@]}" --epochs 2 --dist-timeout 60 -o dp.safetensors -q 2>dp0.err &
p0=$!
dp 1 update --policy base.safetensors "${common[@]}" --epochs 2 --dist-timeout 60 -o dp.safetensors -q 2>dp1.err
rc1=$?
wait $p0
rc0=$?
[ "$rc0$rc1" = 00 ] && pass || fail "two ranks: exit $rc0/$rc1: $(cat dp0.err dp1.err)"
# The same edges in another global minibatch: the yardstick of a real difference.
update --policy base.safetensors a.h5 --minibatch 4 --threads 1 --lr 1e-3 --epochs 2 -o other.safetensors -q
"$PYTHON" - <<'PY' && pass || fail "two ranks differ from one process"
import json, struct
import numpy as np
def tensors(path):
    blob = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', blob[:8])
    h = json.loads(blob[8:8 + n])
    return {k: np.frombuffer(blob[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]], np.float32)
            for k, v in h.items() if k != '__metadata__' and not k.startswith('optimizer.')}
a, b, c = tensors('full.safetensors'), tensors('dp.safetensors'), tensors('other.safetensors')
assert a.keys() == b.keys()
diff = lambda x, y: max(float(np.abs(x[k] - y[k]).max()) for k in x)
# lr 1e-3 over 6 Adam steps moves weights by up to 6e-3. Rounding differs between one batched
# forward pass and two halves; Adam's first steps amplify it where a gradient is near 0 (its
# update is lr * g / |g|), so the bound is a fraction of one step, far below another batching.
print('two ranks vs one process: %.3g; another minibatch size: %.3g' % (diff(a, b), diff(a, c)))
assert diff(a, b) < 1e-4 and diff(a, c) > 20 * diff(a, b), (diff(a, b), diff(a, c))
PY
# A rank that never joins: rank 0 gives up after --dist-timeout with exit 75.
start=$SECONDS
run_case never-joins 75 'rank 0 of 2: cannot form the process group at 127.0.0.1:' -- \
  dp 0 update --policy base.safetensors "${common[@]}" --dist-timeout 3 -o lone.safetensors
[ $((SECONDS - start)) -lt 30 ] && pass || fail "waited $((SECONDS - start)) s for a missing rank"
# A rank that dies mid-update: the other fails with a clear error, not a hang.
port=$((port + 1))
long=(a.h5 --minibatch 1 --epochs 400 --threads 1 --dist-timeout 20 -o dead.safetensors)
env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port update --policy base.safetensors "${long[@]}" -v 2>dead0.err &
p0=$!
env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port update --policy base.safetensors "${long[@]}" 2>dead1.err &
p1=$!
for _ in $(seq 300); do grep -q "data parallel: 2 ranks" dead0.err && break; sleep 0.1; done
sleep 1
kill -KILL $p1
wait $p1 2>/dev/null
start=$SECONDS
wait $p0
rc0=$?
[ "$rc0" = 75 ] && pass || fail "survivor exit $rc0: $(cat dead0.err)"
grep -q "a collective with the other ranks failed" dead0.err && pass || fail "survivor message: $(cat dead0.err)"
[ $((SECONDS - start)) -lt 30 ] && pass || fail "survivor took $((SECONDS - start)) s"
[ ! -e dead.safetensors ] && pass || fail "a failed data-parallel update left a checkpoint"
finish
