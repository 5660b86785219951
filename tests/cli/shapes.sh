# shapes.sh -- treerpo-shapes: disjoint prompt splits, data sets that h5py reads, reruns identical.
source "$(dirname "$0")/lib.sh"
treerpo-shapes prompts --split train -o train.txt -q && treerpo-shapes prompts --split heldout -o heldout.txt -q \
  && pass || fail "prompt files"
[ -z "$(comm -12 <(sort train.txt) <(sort heldout.txt))" ] && pass || fail "train and held-out share prompts"
[ "$(sort -u train.txt heldout.txt | wc -l)" = "$(cat train.txt heldout.txt | wc -l)" ] && pass || fail "repeated prompts"
treerpo-shapes prompts --split heldout --json -o h2.txt | "$PYTHON" -c "
import json, sys; j = json.load(sys.stdin)
assert set(j['per_kind']) == {'single_object', 'two_objects', 'counting', 'colors', 'position', 'color_attr'}, j
assert sum(j['per_kind'].values()) == $(wc -l <heldout.txt)
" && pass || fail "per-kind counts"
export SOURCE_DATE_EPOCH=1
treerpo-shapes dataset --split train --count 60 --seed 4 -o d.h5 -q && pass || fail "dataset"
mkdir again && (cd again && treerpo-shapes dataset --split train --count 60 --seed 4 -o d.h5 -q)
cmp -s d.h5 again/d.h5 && pass || fail "rerun differs"
"$PYTHON" - <<'PY' && pass || fail "dataset read by h5py"
import h5py, numpy as np
f = h5py.File('d.h5', 'r')
assert f.attrs['treerpo_format'] == 'dataset'
assert f['images'].shape == (60, 32, 32, 3) and f['images'].dtype == np.uint8
kinds = h5py.check_enum_dtype(f['kind'].dtype)
assert kinds['single_object'] == 0 and kinds['color_attr'] == 5, kinds
assert list(np.bincount(f['kind'][:])) == [10] * 6
train = set(open('train.txt').read().split('\n'))
assert all(t in train for t in f['prompts/text'].asstr()[:])
PY
treerpo-inspect d.h5 >/dev/null 2>err.txt; [ $? = 65 ] && grep -q "treerpo_format is 'dataset'" err.txt && pass || fail "inspect names the format: $(cat err.txt)"
# explain: renders are exactly their prompts' objects; per image one line; the wrong kinds of file.
treerpo-shapes explain d.h5 --json | "$PYTHON" -c "
import json, sys; j = json.load(sys.stdin)
assert j['strict'] == 1.0 and j['failures'] == {'none': j['images']}, j
assert j['components']['recognised'] == j['components']['total'] and j['fit_quantiles'][0] >= 0.7, j
" && pass || fail "explain renders"
[ "$(treerpo-shapes explain d.h5 --per-image | grep -c $'^[0-9]*\tnone\t')" = "$(treerpo-shapes explain d.h5 --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["images"])')" ] \
  && pass || fail "explain --per-image"
run_case explain-compare 64 '--images applies to samples files' -- treerpo-shapes explain d.h5 --images compare
treerpo-synth --count 1 -o t.h5 -q
run_case explain-kind 65 "t\.h5: treerpo_format is 'trajectory', expected 'samples'" -- treerpo-shapes explain t.h5
# select: every render passes (so all 60 are kept, in order); --per-prompt caps each prompt;
# an untrained model's samples pass nothing, which is refused rather than an empty data set.
treerpo-shapes select d.h5 --json -o sel.h5 | "$PYTHON" -c "
import json, sys; j = json.load(sys.stdin); assert j['images'] == 60 and j['kept'] == 60, j
" && pass || fail "select renders"
"$PYTHON" - <<'PY' && pass || fail "select keeps the images, prompts and kinds"
import h5py, numpy as np
a, b = h5py.File('d.h5', 'r'), h5py.File('sel.h5', 'r')
assert b.attrs['treerpo_format'] == 'dataset'
assert (a['images'][:] == b['images'][:]).all() and (a['kind'][:] == b['kind'][:]).all()
assert list(a['prompts/text'].asstr()[:]) == list(b['prompts/text'].asstr()[:])
PY
distinct=$(treerpo-shapes explain d.h5 --per-image | cut -s -f3 | sort -u | grep -c .)
treerpo-shapes select d.h5 --per-prompt 1 --json -o sel1.h5 | "$PYTHON" -c "
import json, sys; j = json.load(sys.stdin); assert j['kept'] == j['prompts'] == $distinct, j
" && pass || fail "select --per-prompt 1"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o m.safetensors -q
treerpo-shapes explain d.h5 --per-image | cut -s -f3 | awk '!seen[$0]++' | head -3 > p3.txt
evaluate --policy m.safetensors --prompts p3.txt --samples 2 --steps 2 --samples-out s.h5 -q >/dev/null
run_case select-none 65 'none of the 6 policy images of s\.h5 .* passes the strict shapes reward' -- treerpo-shapes select s.h5 -o none.h5
[ ! -e none.h5 ] && pass || fail "select wrote an empty data set"
# The random control of select (scripts/random_subset_dataset.py): N rows of the samples keyed by
# the seed, kinds looked up in a data set, a file update's SFT objective reads.
rs() { "$PYTHON" "$SRC/scripts/random_subset_dataset.py" "$@"; }
rs s.h5 4 d.h5 r1.h5 --seed 3 2>/dev/null && rs s.h5 4 d.h5 r2.h5 --seed 3 2>/dev/null && pass || fail "random subset"
"$PYTHON" - <<'PY' && pass || fail "random subset rows, kinds and order"
import h5py, numpy as np
s, d, r1, r2 = (h5py.File(p, 'r') for p in ('s.h5', 'd.h5', 'r1.h5', 'r2.h5'))
kind = dict(zip(d['prompts/text'].asstr()[:], d['kind'][:]))
texts, imgs = list(s['text'].asstr()[:]), s['policy/images'][:]
assert r1['images'].shape == (4, 16, 16, 3) and (r1['images'][:] == r2['images'][:]).all()
for t, im, k in zip(r1['prompts/text'].asstr()[:], r1['images'][:], r1['kind'][:]):
    rows = [i for i, x in enumerate(texts) if x == t and (imgs[i] == im).all()]
    assert rows and kind[t] == k, t
assert h5py.check_enum_dtype(r1['kind'].dtype) == h5py.check_enum_dtype(d['kind'].dtype)
assert '32015' in r1['images']._filters and r1['images'].fletcher32 and r1['images'].shuffle, 'the data set storage'
PY
update r1.h5 --objective sft --policy m.safetensors --steps 1 --batch-size 2 --seed 1 -o sft.safetensors -q \
  && pass || fail "update reads the random subset"
run_case subset-too-many 1 'N must be in 1\.\.6' -- rs s.h5 7 d.h5 r3.h5
run_case bad-split 64 'split' -- treerpo-shapes dataset --split test -o x.h5
run_case seed-prompts 64 '--seed applies to dataset and prompts --shuffle only' -- treerpo-shapes prompts --seed 3
# --shuffle: the same prompts, in an order keyed by the seed; every block of 16 lines (a loop
# iteration's --shard) mixes the kinds, which the by-kind order does not.
treerpo-shapes prompts --shuffle --seed 1 -o s1.txt -q && treerpo-shapes prompts --shuffle --seed 1 -o s1b.txt -q \
  && treerpo-shapes prompts --shuffle --seed 2 -o s2.txt -q && pass || fail "prompts --shuffle"
cmp -s s1.txt s1b.txt && ! cmp -s s1.txt s2.txt && ! cmp -s s1.txt train.txt && pass || fail "shuffle is not keyed by the seed"
[ "$(sort s1.txt | md5sum)" = "$(sort train.txt | md5sum)" ] && pass || fail "shuffle changed the prompts"
"$PYTHON" - <<'PY' && pass || fail "shuffled blocks do not mix the kinds"
kind = lambda t: 'pos' if any(w in t for w in (' left of ', ' right of ', ' above ', ' below ')) else \
    ('attr' if ' and ' in t and t.split()[1] in ('red', 'green', 'blue', 'yellow', 'purple') else t.split()[1])
blocks = lambda path: [set(map(kind, l[i:i + 16])) for l in [open(path).read().splitlines()] for i in range(0, 256, 16)]
assert min(map(len, blocks('s1.txt'))) >= 2 and min(map(len, blocks('train.txt'))) == 1
PY
finish
