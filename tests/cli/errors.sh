# errors.sh -- every bad input gets a one-line error naming the file and object, its exit code,
# and leaves no output behind.
source "$(dirname "$0")/lib.sh"

treerpo-synth --count 2 --seed 1 --depth 2 --steps 4 -o good.h5 -q || fail "synth"
no_output() { [ ! -e "$1" ] && [ -z "$(ls -A . | grep -E '\.tmp\.' || true)" ] || fail "output or temp left: $1"; }

# Each bad file goes through treerpo-merge (which writes an output) and treerpo-inspect.
check_bad() {
  local name=$1 rc=$2 pattern=$3 file=$4
  run_case "$name-merge" "$rc" "$pattern" -- treerpo-merge "$file" -o "out-$name.h5"
  no_output "out-$name.h5"
  run_case "$name-inspect" "$rc" "$pattern" -- treerpo-inspect "$file"
}

printf 'plain text, not HDF5\n' >text.h5
: >empty.h5
head -c 3000 good.h5 >truncated.h5
check_bad not-hdf5 65 '^treerpo-(merge|inspect): error: text\.h5: not an HDF5 file' text.h5
check_bad empty 65 'error: empty\.h5: empty file' empty.h5
check_bad truncated 65 'error: truncated\.h5: truncated or damaged HDF5 file' truncated.h5
check_bad missing-file 66 'error: nope\.h5: No such file or directory' nope.h5

# Edits made with h5py (attributes and links only: no filter plugin needed for these).
edit() {  # edit NAME PYTHON-STATEMENTS
  cp good.h5 "$1.h5"
  "$PYTHON" -c "import h5py, numpy as np
f = h5py.File('$1.h5', 'r+')
$2
f.close()" || fail "edit $1"
}
edit format-name "f.attrs['treerpo_format'] = 'scores'"
check_bad format-name 65 "format-name\.h5: / attribute treerpo_format is 'scores', expected 'trajectory'" format-name.h5
edit newer-major "f.attrs['treerpo_format_version'] = np.array([2, 1], dtype='<i8')"
check_bad newer-major 65 'newer-major\.h5: file is format 2\.1; this build reads 1\.x' newer-major.h5
edit missing-dataset "del f['nodes/latent']"
check_bad missing-dataset 65 'missing-dataset\.h5: /nodes/latent: missing dataset' missing-dataset.h5
edit wrong-dtype "n = f['nodes/step'].shape[0]; del f['nodes/step']; f['nodes/step'] = np.zeros(n, dtype='<f4')"
check_bad wrong-dtype 65 'wrong-dtype\.h5: /nodes/step: expected int32, found float32' wrong-dtype.h5
edit wrong-shape "del f['prompts/id']; f['prompts/id'] = np.zeros(5, dtype='<i8')"
check_bad wrong-shape 65 'wrong-shape\.h5: /prompts/id: expected shape \[2\], found \[5\]' wrong-shape.h5

# A flipped byte inside a stored chunk: Fletcher32 catches it before anything uses the data.
cp good.h5 corrupt.h5
offset=$("$PYTHON" -c "import h5py
f = h5py.File('corrupt.h5', 'r'); info = f['nodes/latent'].id.get_chunk_info(0)
print(info.byte_offset + info.size // 2)")
printf '\xff\x00\xff' | dd of=corrupt.h5 bs=1 seek="$offset" conv=notrunc status=none
check_bad corrupt 65 'corrupt\.h5: /nodes/latent: checksum mismatch' corrupt.h5

# Outputs that cannot be created, and binary to a terminal.
run_case no-dir 73 'error: no/such/dir/o\.h5: cannot create output in no/such/dir' -- treerpo-merge good.h5 -o no/such/dir/o.h5
run_case read-only-fs 73 'cannot create output' -- treerpo-merge good.h5 -o /proc/o.h5
cp good.h5 exists.h5
run_case exists 64 'exists\.h5: output exists \(use --force to overwrite\)' -- treerpo-merge good.h5 -o exists.h5
cmp -s good.h5 exists.h5 || fail "existing output was modified"
run_case tty 64 'refusing to write HDF5 to a terminal \(use -o FILE or --force\)' -- treerpo-merge good.h5 --fake-stdout-tty
run_case json-and-stdout 64 '--json and -o - both want stdout' -- treerpo-merge good.h5 -o - --json
run_case bad-flag 64 'no-such-flag' -- treerpo-inspect --no-such-flag
run_case bad-shard 64 '--shard: expected i/n' -- treerpo-synth --shard 2/2 -o x.h5
run_case bad-window 64 'window' -- treerpo-synth --steps 3 --depth 4 -o x.h5
no_output x.h5
printf 'count = "many"\n' >bad.toml
run_case bad-config-value 64 'count' -- treerpo-synth --config bad.toml -o x.h5
run_case missing-config 66 'missing\.toml' -- treerpo-synth --config missing.toml -o x.h5
no_output x.h5
# Devices are written into, never replaced; a full device is an I/O error (74).
treerpo-merge good.h5 -o /dev/null -q && [ -c /dev/null ] && pass || fail "-o /dev/null"
if [ -c /dev/full ]; then
  run_case full-device 74 'No space left on device' -- treerpo-merge good.h5 -o /dev/full --force
  [ -c /dev/full ] && pass || fail "/dev/full was replaced"
  treerpo-shapes prompts --split train >/dev/full 2>full.err; [ $? = 74 ] && pass || fail "text to a full stdout: $(cat full.err)"
fi
# Inputs are never modified, whatever happened above.
cmp -s good.h5 exists.h5 || fail "input changed"
finish
