# readme.sh -- README's two commands are the ones .ci/run and the examples really use.
source "$(dirname "$0")/lib.sh"
readme="$SRC/README.md"
test_cmd=$(grep -A1 '^# (2) set up and run the tests' "$readme" | tail -1)
main_cmd=$(grep -A1 '^# (1) set up and run the RL loop' "$readme" | tail -1)
[ -n "$test_cmd" ] && grep -qxF -- "$test_cmd" "$SRC/.ci/run" && pass || fail ".ci/run does not run README's test command: $test_cmd"
[ -n "$main_cmd" ] && pass || fail "README lacks the main command"
# The main command's last step is a Makefile.examples target that exists, and it runs as written
# from the top directory in a tiny mode: the Makefile's sizes come from the environment.
target=$(echo "$main_cmd" | sed -n 's/.*make -f Makefile.examples \([a-z-]*\).*/\1/p')
grep -q "^$target:" "$SRC/Makefile.examples" && pass || fail "README main target '$target' not in Makefile.examples"
make_part=${main_cmd##*&& }
(cd "$SRC" && env BIN="$BIN" OUT="$WORK/main-out" ITERS=1 LOOP_PROMPTS=2 STEPS=5 EVAL_SAMPLES=1 EVAL_STEPS=2 RANKS=1 \
  THREADS=2 bash -c "$make_part") >main.log 2>&1 && grep -q "^held-out shapes: base" main.log \
  && pass || fail "README main command (tiny): $make_part: $(tail -5 main.log)"
# Every treerpo command line quoted in README runs, in order, from a scratch directory that has
# the repository's models/ and schemas/ (README's commands run from the top directory).
ln -s "$SRC/models" models && ln -s "$SRC/schemas" schemas
grep -E '^    (treerpo-|update |tree-rollout |score |advantage |evaluate |.*\| *treerpo-)' "$readme" | sed 's/^    //' >cmds.txt
[ -s cmds.txt ] && pass || fail "no example commands found in README"
while IFS= read -r cmd; do
  bash -c "set -o pipefail; $cmd" >/dev/null 2>err.txt </dev/null && pass || fail "README example failed: $cmd: $(cat err.txt)"
done <cmds.txt
finish
