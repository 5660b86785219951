# gradient_coherence.sh -- scripts/gradient_coherence.sh prints one TSV row (name, prompts, cosine
# of two independent first update steps, their sign agreement, implied correlation), keeps both
# steps, and a rerun reuses them and prints the same row.
source "$(dirname "$0")/lib.sh"
printf 'a red circle\n' >p.txt
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt >row.tsv 2>err.log \
  && pass || fail "check: $(tail -3 err.log)"
grep -qE '^one	p\.txt	-?[01]\.[0-9]{4}	[01]\.[0-9]{4}	-?[01]\.[0-9]{4}$' row.tsv && pass || fail "row: $(cat row.tsv)"
[ -e gc/one-s1.safetensors ] && [ -e gc/one-s2.safetensors ] && [ ! -e gc/one.adv.h5 ] && pass || fail "files: $(ls gc)"
[ "$(treerpo-model info --policy gc/one-s1.safetensors | grep digest)" != "$(treerpo-model info --policy gc/one-s2.safetensors | grep digest)" ] \
  && pass || fail "the two seeds gave the same step"
before=$(stat -c %Y gc/one-s1.safetensors)
REWARDS="--reward brightness" BIN="$BIN" "$SRC/scripts/gradient_coherence.sh" gc one p.txt >again.tsv 2>&1
cmp -s row.tsv again.tsv && [ "$(stat -c %Y gc/one-s1.safetensors)" = "$before" ] && pass || fail "rerun: $(cat again.tsv)"
finish
