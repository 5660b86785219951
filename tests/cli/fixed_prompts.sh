# fixed_prompts.sh -- scripts/fixed_prompts_check.sh: the loop on one fixed prompt file prints a
# batch reward per iteration, changes the checkpoint, and a rerun reuses its checkpoints.
source "$(dirname "$0")/lib.sh"
printf 'a red circle\n' >p.txt
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/fixed_prompts_check.sh" fp p.txt 2 1e-4 --lambda 0 >run.log 2>&1 \
  && pass || fail "check: $(tail -3 run.log)"
[ "$(grep -cE '^[01] brightness 0\.[0-9]{4}$' run.log)" = 2 ] && pass || fail "one line per iteration: $(cat run.log)"
[ "$(treerpo-model info --policy fp/ckpt2.safetensors | grep digest)" != "$(treerpo-model info --policy fp/ckpt0.safetensors | grep digest)" ] \
  && pass || fail "the checkpoint did not change"
before=$(stat -c %Y fp/ckpt2.safetensors)
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/fixed_prompts_check.sh" fp p.txt 2 1e-4 --lambda 0 >again.log 2>&1
cmp -s run.log again.log && [ "$(stat -c %Y fp/ckpt2.safetensors)" = "$before" ] && pass || fail "rerun redid work: $(cat again.log)"
finish
