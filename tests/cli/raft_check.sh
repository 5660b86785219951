# raft_check.sh -- scripts/raft_check.sh at a tiny size on the shipped base model: the table has
# the base and the arms (one oracle learning rate) at both evaluation steps, the base's paired difference to itself is
# exactly 0, a rerun reuses every file, and an unreadable prompt file exits 66.
source "$(dirname "$0")/lib.sh"
treerpo-shapes dataset --split train --count 60 --seed 1 -o kinds.h5 -q
"$PYTHON" - <<'PY'
import h5py
f = h5py.File('kinds.h5', 'r')
texts = list(dict.fromkeys(t for t, k in zip(f['prompts/text'].asstr()[:], f['kind'][:]) if k in (0, 3)))
open('train.txt', 'w').write('\n'.join(texts[:3]) + '\n')
PY
treerpo-shapes prompts --split heldout | head -2 >heldout.txt
export ORACLE_LRS=1e-4 ARM_STEPS=2 SAMPLES=4 EVAL_SAMPLES=2 TRAIN_EVAL_SAMPLES=1 RENDERS=60 TRAIN_PROMPTS=train.txt HELDOUT_PROMPTS=heldout.txt
BIN="$BIN" "$SRC/scripts/raft_check.sh" rc table.tsv >run.log 2>&1 && pass || fail "check: $(tail -3 run.log)"
"$PYTHON" - <<'PY' && pass || fail "table: $(cat table.tsv)"
rows = [l.split('\t') for l in open('table.tsv').read().splitlines()]
assert rows[0][:4] == ['arm', 'step', 'strict', 'diff_vs_base'], rows[0]
arms = ('a-sel', 'b-null', 'c-rend', 'o-1e-4')
assert [(r[0], r[1]) for r in rows[1:]] == [('base', '0')] + [(a, k) for a in arms for k in ('1', '2')]
assert rows[1][3] == '+0.000 (+0.000..+0.000)', rows[1]
train = {(r[0], r[1]): r[8] for r in rows[1:]}
assert all(train[(a, '2')] for a in ('base', 'a-sel', 'b-null', 'c-rend') if a != 'base') and train[('base', '0')]
assert not train[('o-1e-4', '2')], 'the oracle trains on the held-out prompts only'
PY
before=$(stat -c %Y rc/a-sel-2.safetensors)
BIN=$(realpath --relative-to=. "$BIN") "$SRC/scripts/raft_check.sh" rc again.tsv >again.log 2>&1  # a relative BIN too
cmp -s table.tsv again.tsv && [ "$(stat -c %Y rc/a-sel-2.safetensors)" = "$before" ] && pass || fail "rerun redid work: $(cat again.log)"
TRAIN_PROMPTS=missing.txt run_case missing-prompts 66 'missing\.txt: cannot read the prompt file' -- \
  env BIN="$BIN" "$SRC/scripts/raft_check.sh" rc2 t2.tsv
finish
