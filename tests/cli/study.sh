# study.sh -- scripts/study.py: a tiny two-configuration, two-seed study finishes; a rerun does
# nothing; a larger budget continues a run; an interrupted iteration is redone; a report written
# before a crash is reused; changed settings, a missing checkpoint and a second driver are refused;
# the tables' arithmetic on made-up curves.
source "$(dirname "$0")/lib.sh"
treerpo-model init --seed 1 --width 32 --depth 1 --heads 2 --image-size 16 -o base.safetensors -q
treerpo-shapes prompts --split train -o - | head -2 >train.txt
treerpo-shapes prompts --split heldout -o - | head -2 >heldout.txt
study() {
  "$PYTHON" "$SRC/scripts/study.py" --bin "$BIN" --base base.safetensors --train train.txt --heldout heldout.txt \
    --out st --prompts 2 --steps 5 --ranks 1 --threads 1 --eval-samples 1 --eval-steps 2 --points 1 \
    --update-args='--lambda 0.2' "$@"
}
mtimes() { stat -c '%y %n' st/*/seed*/*.safetensors st/*/seed*/*.json st/eval-base.json 2>/dev/null; }
field() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
S=st/tree/seed1

study --budget 1 --seeds 1,2 --configs tree,window >run1.log 2>&1 && pass || fail "study: $(tail -5 run1.log)"
for f in results.json table.md study.svg judge.svg settings.json; do [ -s "st/$f" ] || fail "no st/$f"; done && pass
grep -qE '^\| tree \| 1 \(1 / 1\) \| ' st/table.md && grep -qE '^\| window \| 1 \(1 / 1\) \| ' st/table.md \
  && grep -q '^| base (before training) | 0 | 0 | 0 |' st/table.md && grep -q '^Claim' st/table.md \
  && pass || fail "table: $(cat st/table.md)"
grep -q "<polyline" st/study.svg && grep -q "<polyline" st/judge.svg && pass || fail "empty plots"
"$PYTHON" - <<'PY' && pass || fail "results.json / states"
import json, os
r = json.load(open("st/results.json"))
assert sorted(r["runs"]) == ["tree", "window"] and all(sorted(v) == ["1", "2"] for v in r["runs"].values()), r["runs"].keys()
for c, seeds in r["runs"].items():
    for s, run in seeds.items():
        d = f"st/{c}/seed{s}"
        assert [p["iteration"] for p in run["points"]] == [0, 1], run["points"]
        assert run["iteration"] == 1 and run["seconds"] >= 1 and run["nfe"] > 0, run
        assert {"strict", "std_error", "partial", "count_match", "foreground", "diversity"} <= set(run["points"][1])
        # The sample files are gone, the summaries and metrics stay.
        assert not any(f.endswith(".h5") for f in os.listdir(d)), os.listdir(d)
        assert all(os.path.exists(f"{d}/it0.{x}") for x in ("rollout.json", "scored.json", "adv.json", "metrics.jsonl"))
        assert json.load(open(f"{d}/it0.rollout.json"))["seed"] == s
# The common --lambda reaches the trees and is left out for the GRPO baseline, which refuses it.
assert '"lambda":0.2' in open("st/tree/seed1/it0.metrics.jsonl").read()
PY
grep -q "common --lambda not passed" run1.log && pass || fail "window was not told about --lambda"

# The same command again: every run is done, nothing is rerun or rewritten.
mtimes >before.txt
study --budget 1 --seeds 1,2 --configs tree,window >run2.log 2>&1 && pass || fail "rerun: $(tail -5 run2.log)"
[ "$(grep -c 'done at iteration 1' run2.log)" = 4 ] && ! grep -q "held-out strict [0-9.]* (s.e." run2.log && pass || fail "rerun ran: $(cat run2.log)"
mtimes | diff before.txt - >/dev/null && pass || fail "rerun rewrote files: $(mtimes | diff before.txt -)"

# A larger budget continues tree seed 1 from its recorded iteration by exactly one iteration.
budget=$("$PYTHON" -c 'import json; print(json.load(open("st/tree/seed1/state.json"))["seconds"] + 0.001)')
study --budget "$budget" --seeds 1 --configs tree >run3.log 2>&1 && pass || fail "extend: $(tail -5 run3.log)"
grep -q "tree seed 1: resuming at iteration 1" run3.log && [ "$(field $S/state.json iteration)" = 2 ] \
  && [ -e $S/ckpt1.safetensors ] && [ -e $S/ckpt2.safetensors ] && [ -e $S/eval2.json ] && pass || fail "did not continue: $(cat run3.log)"
[ "$(stat -c %y $S/eval1.json)" = "$(grep "$S/eval1.json" before.txt | sed 's/ st\/.*//')" ] && pass || fail "eval1.json rewritten"
[ "$(field $S/state.json iteration)" = 2 ] && [ "$(field st/tree/seed2/state.json iteration)" = 1 ] && pass || fail "other runs moved"

# A report written just before a crash (the state lacks its point) is reused, not rerun.
"$PYTHON" - $S/state.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["points"].pop()
json.dump(s, open(sys.argv[1], "w"))
PY
before2=$(stat -c %y $S/eval2.json)
study --budget "$budget" --seeds 1 --configs tree >run4.log 2>&1 && pass || fail "catch-up: $(tail -5 run4.log)"
[ "$(stat -c %y $S/eval2.json)" = "$before2" ] && "$PYTHON" -c "import json; s = json.load(open('$S/state.json')); \
  assert [p['iteration'] for p in s['points']] == [0, 1, 2]" && pass || fail "report not reused: $(cat run4.log)"

# An iteration interrupted mid-way (the state still at iteration 1) is redone from its start.
"$PYTHON" - $S/state.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["log"], s["points"] = s["log"][:1], s["points"][:2]
s.update(iteration=1, seconds=s["log"][0]["seconds"], nfe=s["log"][0]["nfe"], checkpoint="ckpt1.safetensors")
json.dump(s, open(sys.argv[1], "w"))
PY
ck2=$(stat -c %y $S/ckpt2.safetensors)
study --budget "$budget" --seeds 1 --configs tree >run5.log 2>&1 && pass || fail "redo: $(tail -5 run5.log)"
[ "$(field $S/state.json iteration)" = 2 ] && [ "$(stat -c %y $S/ckpt2.safetensors)" != "$ck2" ] \
  && [ "$(stat -c %y $S/eval2.json)" != "$before2" ] && pass || fail "iteration 1 not redone: $(cat run5.log)"

# Refused: other settings in the same directory, options the study sets, a missing checkpoint, a
# second driver on the same directory.
run_case changed 1 'started with other settings .*lr' -- study --budget 1 --lr 1e-4
run_case reserved 1 'rollout-args: --seed is set by the study' -- study --budget 1 --rollout-args='--seed 3'
rm $S/ckpt2.safetensors
run_case missing 1 'records checkpoint .*ckpt2.safetensors, which is missing' -- study --budget 1000 --seeds 1 --configs tree
exec 9>st/study.lock
flock -n 9 && run_case locked 1 'another study.py is running' -- study --budget 1
exec 9>&-
# --report-only rebuilds the outputs from the states without running anything.
rm st/table.md
run_case report-only 0 '' -- study --budget 1 --seeds 1,2 --configs tree,window --report-only
[ -s st/table.md ] && pass || fail "--report-only wrote no table"

# The tables on made-up curves: per-seed columns, time to accuracy, the claim's ratio; and the
# merge of tool arguments (CLI11 refuses an option given twice).
"$PYTHON" - "$SRC/scripts" <<'PY' && pass || fail "table arithmetic"
import sys, types
sys.path.insert(0, sys.argv[1])
import study
pt = lambda k, s, acc: dict(iteration=k, seconds=s, nfe=100 * k, strict=acc, std_error=0.02, partial=acc + 0.1,
                            count_match=0.9, foreground=0.1, diversity=0.2)
base = pt(0, 0, 0.1)
runs = {"tree": {1: {"points": [base, pt(1, 50, 0.2), pt(2, 100, 0.4)]}, 2: {"points": [base, pt(1, 60, 0.3), pt(2, 110, 0.3)]}},
        "window": {1: {"points": [base, pt(1, 100, 0.3), pt(2, 200, 0.35)]}, 2: {"points": [base, pt(1, 90, 0.25), pt(2, 210, 0.25)]}}}
a = types.SimpleNamespace(budget=200)
text = "\n".join(study.tables(a, {"eval_every": 100, "eval_samples": 4, "eval_steps": 20}, base, runs))
print(text)
assert "| tree | 2 (2 / 2) | 105 (100 / 110) | 200 (200 / 200) | 0.350 (0.400 / 0.300) |" in text
assert "base 0.100 + f x (0.350 (tree) - 0.100)" in text
# Levels of the gain 0.225, 0.288, 0.325: tree seed 1 at 100, 100, 100 s, seed 2 at 60, 60 s and never.
assert "| tree | 80 (100 / 60) | 150 (200 / 100) | 80 (100 / 60) | 150 (200 / 100) | - (100 / -) | - (200 / -) |" in text
assert "50 % of the gain (0.225): seconds" in text
high = dict(base, strict=0.5)  # no run ends above this base: no levels to reach
assert study.reach_table(high, runs, study.summarize(runs)) == \
    ["Time to accuracy: no configuration ends above the base model's 0.500 held-out strict accuracy (tree is best with 0.350)."]
assert "| window | 95 (100 / 90) |" in text
# The window ends at 0.300 after 205 s; the tree reaches 0.300 at 100 s and 60 s: 80 / 205 = 0.39.
assert "window's final mean held-out strict is 0.300 after 205 stage seconds; tree first reaches it at 80 (100 / 60) s, 0.39" in text
# The NFT pair's line appears only when one of its configurations ran; then it is asked the same way.
assert "tree-nft" not in text
runs2 = {"tree-nft": runs["tree"], "window-nft": runs["window"]}
text2 = "\n".join(study.tables(a, {"eval_every": 100, "eval_samples": 4, "eval_steps": 20}, base, runs2))
assert "Claim (tree reaches window's accuracy in about half the time): needs both tree and window." in text2
assert "window-nft's final mean held-out strict is 0.300 after 205 stage seconds; tree-nft first reaches it at 80 (100 / 60) s, 0.39" in text2
assert study.override(["--lr", "1e-5", "--threads", "1", "--lambda", "0.1"], ["--lambda", "0", "-t", "2"]) \
    == ["--lr", "1e-5", "--lambda", "0", "-t", "2"]
assert study.option_groups(["--layer-weights", "1", "2", "--flag", "--x=-1", "--y", "-0.5"]) == \
    [("--layer-weights", ["--layer-weights", "1", "2"]), ("--flag", ["--flag"]), ("--x", ["--x=-1"]), ("--y", ["--y", "-0.5"])]
PY
finish
