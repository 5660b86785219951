# makefile_examples.sh -- every Makefile.examples target runs; a rerun does nothing; an
# interrupted run resumes at the first missing file.
source "$(dirname "$0")/lib.sh"
# Tiny sizes: 2 prompts, 5 steps, 1 evaluation sample of 2 steps, a 2-step base model recipe.
mk() { make -s -f "$SRC/Makefile.examples" BIN="$BIN" OUT="$WORK/out" COUNT=4 PROMPTS=2 STEPS=5 EVAL_SAMPLES=1 \
  EVAL_STEPS=2 BASE_DATA=12 BASE_STEPS=2 DATA_COUNT=24 "$@"; }
mk all >all.log 2>&1 && pass || fail "make all: $(tail -5 all.log)"
grep -q "merged shards equal the single run" all.log && pass || fail "merge check did not run"
grep -q "the pipeline equals the cached files" all.log && pass || fail "pipeline check did not run"
grep -q "held-out strict" all.log && pass || fail "evaluate-base did not run"
grep -q "^retrained: digest: sha256:" all.log && pass || fail "base-model did not run"
mk -q "$WORK/out/synth.h5" "$WORK/out/merged.h5" "$WORK/out/train.h5" "$WORK/out/heldout-synth.h5" "$WORK/out/base.safetensors" \
  "$WORK/out/advantaged.h5" "$WORK/out/advantaged-leaf.h5" "$WORK/out/base-eval.json" "$WORK/out/shapes-base.safetensors" && pass || fail "rerun would rebuild up-to-date files"
rm "$WORK/out/shard1.h5"
before=$(stat -c %Y "$WORK/out/shard0.h5")
mk merge-check >resume.log 2>&1 && pass || fail "resume: $(tail -5 resume.log)"
[ -e "$WORK/out/shard1.h5" ] && [ "$(stat -c %Y "$WORK/out/shard0.h5")" = "$before" ] && pass || fail "resume rebuilt more than the missing shard"
mk clean && [ ! -e "$WORK/out" ] && pass || fail "clean"
finish
