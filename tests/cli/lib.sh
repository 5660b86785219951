# lib.sh -- helpers for the black-box CLI tests. Sourced; expects BIN, SRC, PYTHON in the env.
set -u
: "${BIN:?BIN must point at the built tools}"
export PATH="$BIN:$PATH"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/treerpo-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
FAILED=0
PASSED=0

fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
pass() { PASSED=$((PASSED + 1)); }

# run_case NAME EXPECTED_RC STDERR_PATTERN -- command...
# Runs the command, checks its exit code, that stderr is one line matching the pattern.
run_case() {
  local name=$1 want=$2 pattern=$3
  shift 4
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null
  local rc=$?
  if [ "$rc" != "$want" ]; then fail "$name: exit $rc, expected $want; stderr: $(cat "$WORK/$name.err")"; return; fi
  if [ -n "$pattern" ]; then
    if ! grep -qE -- "$pattern" "$WORK/$name.err"; then fail "$name: stderr lacks /$pattern/: $(cat "$WORK/$name.err")"; return; fi
    if [ "$(wc -l <"$WORK/$name.err")" != 1 ]; then fail "$name: stderr is not one line: $(cat "$WORK/$name.err")"; return; fi
  fi
  pass
}

# wait_for_handler PID SIG -- waits (up to 10 s) until the process catches SIG (its bit in
# /proc/PID/status SigCgt): on a loaded machine, loading libtorch alone can outlast a fixed sleep.
wait_for_handler() {
  local pid=$1 bit=$(( 1 << ($(kill -l "$2") - 1) )) cgt
  for _ in $(seq 100); do
    cgt=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
    [ -n "$cgt" ] && (( 16#$cgt & bit )) && return 0
    sleep 0.1
  done
  return 1
}

# Compares two trajectory files dataset by dataset, ignoring /provenance (h5diff semantics).
same_content() {
  h5diff --exclude-path /provenance "$1" "$2" >/dev/null 2>&1
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ]
}
