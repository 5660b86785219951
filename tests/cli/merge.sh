# merge.sh -- shards written with --shard (or the Slurm array variables) merge to the single run.
source "$(dirname "$0")/lib.sh"
printf 'a red circle\na blue square\ntwo green triangles\na circle left of a square\none yellow star\n' >prompts.txt
base=(--prompts prompts.txt --seed 9 --depth 3 --branching 3,2,2 --window-start 1 --velocity -q)
common=("${base[@]}" --steps 6)
treerpo-synth "${common[@]}" -o single.h5 || fail "single"
for i in 0 1 2; do treerpo-synth "${common[@]}" --shard $i/3 -o shard$i.h5 || fail "shard $i"; done
treerpo-merge shard2.h5 shard0.h5 shard1.h5 -o merged.h5 -q || fail "merge"
same_content single.h5 merged.h5 && pass || fail "merged shards differ from the single run"
# Slurm array variables give the same shards.
SLURM_ARRAY_TASK_ID=11 SLURM_ARRAY_TASK_MIN=10 SLURM_ARRAY_TASK_COUNT=3 treerpo-synth "${common[@]}" -o slurm1.h5
same_content shard1.h5 slurm1.h5 && pass || fail "Slurm array shard differs from --shard 1/3"
# Merge provenance lists each input's digest.
treerpo-inspect --json merged.h5 | "$PYTHON" -c "
import json, sys, hashlib
j = json.load(sys.stdin)
last = j['provenance'][-1]
assert last['tool'] == 'treerpo-merge', last
want = ['sha256:' + hashlib.sha256(open(p, 'rb').read()).hexdigest() for p in ['shard2.h5', 'shard0.h5', 'shard1.h5']]
assert [i['digest'] for i in last['inputs']] == want, last['inputs']
assert j['statistics']['nfe_total'] == 5 * (1 + (1 + 3 + 6) + 12 * (6 - 1 - 3)), j['statistics']
" && pass || fail "merge provenance or NFE"
# Refusals: other configuration, repeated prompts.
treerpo-synth "${base[@]}" --shard 1/3 --steps 7 -o other.h5
run_case mismatch 65 'other\.h5: /rollout steps is 7 but shard0\.h5 has 6' -- treerpo-merge shard0.h5 other.h5 -o bad.h5
run_case repeated 65 'prompt id 0 is also in shard0\.h5' -- treerpo-merge shard0.h5 shard0.h5 -o bad.h5
[ ! -e bad.h5 ] && pass || fail "refused merge left an output"
finish
