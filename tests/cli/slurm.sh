# slurm.sh -- the example Slurm scripts run for real on a single-node Slurm started here: a munge
# key and daemon, a generated slurm.conf (this host as the one node with its CPUs, one
# partition), slurmctld and slurmd as root. One RL iteration is submitted by
# scripts/slurm/iteration.sh (rollout array -> merge + score + advantage -> `srun update` over
# two tasks); the merged rollout must equal a single-process rollout and the checkpoint must
# come from two ranks. Skipped (exit 77) without root or without slurm-wlm and munge.
source "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "skipped: needs root, slurm-wlm and munge (scripts/setup.sh installs them)"
  exit 77
fi
host=$(hostname -s)
S=$WORK/slurm
mkdir -p "$S/state" "$S/spool" "$S/munge" "$WORK/run"
chmod 700 "$S/munge"
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$S/munge/munge.key"
port=$((20000 + $$ % 10000))
cat > "$S/slurm.conf" <<CONF
ClusterName=treerpo-test
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$S/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$S/slurm.conf
stop_daemons() {
  for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munge/munged.pid"; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 1
  rm -rf "$WORK"
}
trap stop_daemons EXIT
munged --force --key-file "$S/munge/munge.key" --socket "$S/munge/munge.socket" --pid-file "$S/munge/munged.pid" \
  --log-file "$S/munge/munged.log" --seed-file "$S/munge/munged.seed" || { fail "munged"; finish; }
slurmctld -i || { fail "slurmctld: $(tail -3 "$S/slurmctld.log")"; finish; }
slurmd || { fail "slurmd: $(tail -3 "$S/slurmd.log")"; finish; }
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break; sleep 1; done
sinfo -h -o %T | grep -qE '^idle' && pass || { fail "the node did not come up: $(sinfo 2>&1; tail -5 "$S/slurmd.log")"; finish; }

# One iteration of the loop on a tiny configuration.
cp "$SRC/models/shapes-base.safetensors" "$WORK/run/ckpt0.safetensors"
printf '%s\n' "a red circle" "two blue squares" "a green triangle" > "$WORK/run/prompts.txt"
export BIN RUN=$WORK/run PROMPTS=$WORK/run/prompts.txt STEPS=5 SHARDS=2 RANKS=2
"$SRC/scripts/slurm/iteration.sh" 0 0 > submit.log 2>&1 && pass || fail "iteration.sh: $(cat submit.log)"
update_job=$(sed -n 's/.*update \([0-9]*\)$/\1/p' submit.log)
for _ in $(seq 300); do
  state=$(scontrol show job "$update_job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  # A job whose dependency can never be satisfied is a failure of an earlier job.
  scontrol show job "$update_job" 2>/dev/null | grep -q 'Reason=DependencyNeverSatisfied' && { state=DEPENDENCY; break; }
  sleep 1
done
[ "$state" = COMPLETED ] && pass || fail "update job $update_job: $state; logs: $(tail -n 3 "$RUN"/*.log)"
[ -s "$RUN/ckpt1.safetensors" ] && pass || fail "no checkpoint"
# The merged shards equal one process's rollout (datasets, not provenance) up to the rounding of
# other batch compositions in the model: latents within 1e-4, pixels within one level.
tree-rollout --policy "$RUN/ckpt0.safetensors" --prompts "$PROMPTS" --iteration 0 --guidance 3 --steps 5 --seed 1 \
  -o single.h5 -q
h5diff --exclude-path /provenance --exclude-path /leaves/image -d 1e-4 single.h5 "$RUN/it0.rollout.h5" >/dev/null \
  && h5diff -d 1 single.h5 "$RUN/it0.rollout.h5" /leaves/image /leaves/image >/dev/null \
  && pass || fail "merged shards differ from one rollout"
"$PYTHON" - "$RUN/it0.metrics.jsonl" <<'PY' && pass || fail "update did not run on two ranks"
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1])][-1]
assert summary['update'] and summary['ranks'] == 2 and summary['edges'] == 3 * 30, summary
PY
grep -q "update: layertuning: 90 edges .*: wrote $RUN/ckpt1.safetensors" "$RUN"/treerpo-update-*.log \
  && pass || fail "update log: $(cat "$RUN"/treerpo-update-*.log)"
finish
