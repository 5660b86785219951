# options.sh -- --help/--version, bare calls, config files, environment defaults, exit codes.
source "$(dirname "$0")/lib.sh"
for tool in treerpo-inspect treerpo-merge treerpo-synth; do
  run_case "$tool-help" 0 "" -- "$tool" --help
  grep -q "Common options" "$WORK/$tool-help.out" && pass || fail "$tool --help lacks the common group"
  run_case "$tool-version" 0 "" -- "$tool" --version -v
  grep -q '^BLAS: OpenBLAS' "$WORK/$tool-version.out" && pass || fail "$tool: OpenBLAS is not the BLAS in use: $(cat "$WORK/$tool-version.out")"
  grep -q '^threads: ' "$WORK/$tool-version.out" && pass || fail "$tool --version -v lacks threads"
done
# Bare inspect with a terminal on stdin prints usage and exits 0.
treerpo-inspect --fake-stdin-tty >usage.txt && grep -q '^Usage: treerpo-inspect' usage.txt && pass || fail "bare call usage"
# A config file sets any option; the command line wins over it.
printf 'count = 3\nseed = 4\ndepth = 2\n' >run.toml
treerpo-synth --config run.toml -o c.h5 -q && treerpo-synth --count 3 --seed 4 --depth 2 -o d.h5 -q
same_content c.h5 d.h5 && pass || fail "config file not applied"
treerpo-synth --config run.toml --count 2 --json -o e.h5 -q | grep -q '"prompts":2' && pass || fail "command line did not win"
# The recorded options reproduce the run when fed back as a config file.
treerpo-inspect --json c.h5 | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['provenance'][-1]['options'])" >replay.toml
treerpo-synth --config replay.toml -o f.h5 -q && same_content c.h5 f.h5 && pass || fail "recorded options do not replay"
# Provenance names the commit the binary was built from (refreshed at every build, not only at
# configure time), when built from a git checkout.
if command -v git >/dev/null && git -C "$SRC" rev-parse -q --verify HEAD >/dev/null 2>&1; then
  recorded=$(treerpo-inspect --json c.h5 | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)['provenance'][-1]['git_revision'])")
  [ "$(git -C "$SRC" rev-parse -q --verify "${recorded%-dirty}^{commit}")" = "$(git -C "$SRC" rev-parse HEAD)" ] && pass ||
    fail "provenance records git revision '$recorded', the source is at $(git -C "$SRC" rev-parse --short HEAD) (rebuild?)"
fi
# Environment defaults.
TREERPO_SEED=4 treerpo-synth --count 3 --depth 2 -o g.h5 -q && same_content c.h5 g.h5 && pass || fail "TREERPO_SEED"
# An absent seed is drawn, logged at -v and recorded.
treerpo-synth --count 1 -o h.h5 -v 2>seed.txt && grep -q 'seed: [0-9]' seed.txt && pass || fail "drawn seed not logged"
finish
