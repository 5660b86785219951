# pipes.sh -- a file piped through stdin/stdout equals the one written directly; reruns are
# byte-identical when SOURCE_DATE_EPOCH fixes the provenance time.
source "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1700000000

treerpo-synth --count 3 --seed 5 --latent-dtype float16 -o direct.h5 -q || fail "synth to file"
treerpo-synth --count 3 --seed 5 --latent-dtype float16 -o - -q >piped.h5 || fail "synth to stdout"
same_content direct.h5 piped.h5 && pass || fail "stdout output differs from file output"

# stdin -> merge -> stdout -> inspect, and process substitution (a FIFO) as input.
treerpo-synth --count 3 --seed 5 --latent-dtype float16 -o - -q | treerpo-merge - -o - -q >chain.h5 || fail "chain"
same_content direct.h5 chain.h5 && pass || fail "piped merge differs"
treerpo-merge <(cat direct.h5) -o fifo.h5 -q || fail "merge from a FIFO"
same_content direct.h5 fifo.h5 && pass || fail "FIFO input differs"
treerpo-inspect --json direct.h5 | grep -v '"file"\|"bytes"\|"digest"\|"time"\|"argv"\|"options"\|"path"' >a.json
cat direct.h5 | treerpo-inspect --json | grep -v '"file"\|"bytes"\|"digest"\|"time"\|"argv"\|"options"\|"path"' >b.json
cmp -s a.json b.json && pass || fail "inspect of stdin differs from inspect of the file"

# The inspect form validates against its JSON Schema (with Debian's python3-jsonschema).
treerpo-inspect --json piped.h5 >piped.json
"$PYTHON" - "$SRC/schemas/trajectory-inspect-1.json" piped.json <<'PY' && pass || fail "schema validation"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
doc = json.load(open(sys.argv[2]))
jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
# The schema must be able to fail: a document without a required dataset is rejected.
del doc["datasets"]["/nodes/latent"]
try:
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    sys.exit("schema accepted a layout without /nodes/latent")
except jsonschema.ValidationError:
    pass
PY

# Deterministic: same options twice give the same bytes (provenance time fixed above).
treerpo-synth --count 3 --seed 5 -o - -q >r1.h5
treerpo-synth --count 3 --seed 5 -o - -q >r2.h5
cmp -s r1.h5 r2.h5 && pass || fail "reruns differ in bytes"
treerpo-synth --count 3 --seed 6 -o - -q >r3.h5
same_content r1.h5 r3.h5 && fail "another seed gave the same data" || pass

# Binary output to a terminal is refused; --force allows it.
treerpo-synth --count 1 --fake-stdout-tty -o - -q >/dev/null 2>err.txt
[ $? = 64 ] && pass || fail "terminal refusal"
treerpo-synth --count 1 --fake-stdout-tty --force -o - -q >forced.h5 && [ -s forced.h5 ] && pass || fail "--force to terminal"
finish
