# prompts.sh -- HDF5 prompt files written from Python (the shipped example) are read by the
# tools, their embeddings carried into trajectory files exactly, through shards and merges.
source "$(dirname "$0")/lib.sh"
"$PYTHON" "$SRC/schemas/write_prompt_file.py" prompts.h5 && pass || fail "example writer"
treerpo-synth --prompts prompts.h5 --seed 3 --depth 2 -o all.h5 -q && pass || fail "synth from a prompt file"
for i in 0 1; do treerpo-synth --prompts prompts.h5 --seed 3 --depth 2 --shard $i/2 -o s$i.h5 -q; done
treerpo-merge s1.h5 s0.h5 -o merged.h5 -q && same_content all.h5 merged.h5 && pass || fail "sharded prompt file"
"$PYTHON" - <<'PY' && pass || fail "embeddings carried over"
import h5py, numpy as np
src, out = h5py.File('prompts.h5', 'r')['prompts'], h5py.File('all.h5', 'r')['prompts']
for name in ['id', 'conditioning', 'mask', 'pooled']:
    assert np.array_equal(src[name][:], out[name][:]), name
assert list(src['text'].asstr()[:]) == list(out['text'].asstr()[:])
PY
# treerpo-inspect checks a prompt file and reports it in the form its JSON Schema describes.
treerpo-inspect prompts.h5 >inspect.txt && grep -q '^conditioning: \[5,8,16\]' inspect.txt && pass || fail "inspect text: $(cat inspect.txt)"
treerpo-inspect --json prompts.h5 >prompts.json && pass || fail "inspect --json"
"$PYTHON" - "$SRC/schemas/prompts-inspect-1.json" prompts.json <<'PY' && pass || fail "prompt file schema"
import json, sys, jsonschema
schema, doc = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
assert doc["counts"]["prompts"] == 5 and doc["prompts"][0]["tokens"] == 3, doc["prompts"][0]
doc["format"] = "trajectory"
try:
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    sys.exit("schema accepted a wrong format name")
except jsonschema.ValidationError:
    pass
PY

# A text file with blank lines: ids are line numbers, so removing a blank line changes none.
printf 'a red circle\n\ntwo blue squares\n' >p.txt
treerpo-synth --prompts p.txt --seed 1 --depth 1 --json -o t.h5 -q >/dev/null
"$PYTHON" -c "import h5py; assert list(h5py.File('t.h5')['prompts/id'][:]) == [0, 2]" && pass || fail "text prompt ids"
# Bad prompt files.
"$PYTHON" -c "
import h5py, numpy as np
with h5py.File('noconds.h5', 'w') as f:
    f.attrs['treerpo_format'] = 'prompts'; f.attrs['treerpo_format_version'] = np.array([1, 0])
    g = f.create_group('prompts'); g['text'] = np.array(['a'], dtype=h5py.string_dtype()); g['id'] = np.array([0, 1])
"
run_case bad-ids 65 'noconds\.h5: /prompts/id: expected shape \[1\], found \[2\]' -- treerpo-synth --prompts noconds.h5 -o x.h5
: >empty.txt
run_case empty 65 'empty\.txt: no prompts' -- treerpo-synth --prompts empty.txt -o x.h5
run_case both 64 'already has /prompts/conditioning' -- treerpo-synth --prompts prompts.h5 --conditioning 2,2 -o x.h5
[ ! -e x.h5 ] && pass || fail "output left behind"
finish
