#!/usr/bin/env bash
# loop_sweep.sh -- README's loop (`make -f Makefile.examples loop`) at several values of one of its
# make variables, each in its own OUT directory (reused when it exists: a stopped sweep resumes),
# tabulated side by side: the final checkpoint's held-out strict and partial against the base
# (paired difference and p), the judge's count match, foreground and diversity, and the update's
# mean |rho - 1| and clip fraction over the run.
#
#   scripts/loop_sweep.sh DIR VARIABLE VALUE... [-- MAKE_ARGS...]
#   scripts/loop_sweep.sh out/sweep-lr LOOP_LR 1e-5 3e-5 1e-4
#   scripts/loop_sweep.sh out/sweep-lambda LOOP_UPDATE_ARGS '--lambda 0.1' '--lambda 0' -- LOOP_LR=3e-5
# Writes DIR/sweep-VARIABLE.tsv; a value's directory is DIR/VARIABLE-VALUE, the value's characters
# other than letters, digits, '.', '+' and '-' replaced by '_'.
set -euo pipefail
DIR=$1 VAR=$2
shift 2
values=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do values+=("$1"); shift; done
[ $# -gt 0 ] && shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
table=$DIR/sweep-$VAR.tsv
printf '%s\tstrict_base\tstrict_final\tdifference\tp\tpartial_final\tp_partial\tcount_match\tforeground\tdiversity\tmean_abs_rho_minus_1\tclip_fraction\n' \
  "$VAR" >"$table.tmp"
for v in "${values[@]}"; do
  out=$DIR/$VAR-$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+-' '_')
  make -s -f "$SRC/Makefile.examples" loop OUT="$out" "$VAR=$v" "$@" >"$out.log" 2>&1 || {
    echo "loop_sweep.sh: $VAR=$v failed, see $out.log" >&2
    exit 1
  }
  /usr/bin/python3 - "$out/loop" "$v" >>"$table.tmp" <<'PY'
import glob, json, sys
loop, value = sys.argv[1:]
evals = sorted(glob.glob(loop + "/eval*.json"), key=lambda p: int(p.rsplit("eval", 1)[1][:-5]))
d = json.load(open(evals[-1]))
s, p = d["comparison"]["shapes"], d["comparison"]["shapes-partial"]
j = d["compare"]["judge"]
rho, clip, n = 0.0, 0.0, 0
for f in glob.glob(loop + "/it*.metrics.jsonl"):
    for line in open(f):
        r = json.loads(line)
        if "ratio_dev" in r:
            rho, clip, n = rho + r["ratio_dev"], clip + r.get("clip_fraction", 0.0), n + 1
print("\t".join([value, f"{s['mean_policy']:.3f}", f"{s['mean_compare']:.3f}", f"{s['difference']:+.3f}",
                 f"{s['p_value']:.3g}", f"{p['mean_compare']:.3f}", f"{p['p_value']:.3g}",
                 f"{j['count_match']['mean']:.3f}", f"{j['foreground']['mean']:.3f}", f"{j['diversity']['mean']:.3f}",
                 f"{rho / max(n, 1):.2e}", f"{clip / max(n, 1):.4f}"]))
PY
done
mv "$table.tmp" "$table"
cat "$table"
