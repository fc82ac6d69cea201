#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine: writes a slurm.conf, starts munged,
# slurmctld and slurmd (as root), submits launch/slurm/train.sbatch as a 2-task CPU job with
# sbatch, waits for it, checks the training it ran, and stops exactly what it started.
#
#   tests/slurm_test.sh FLYWHEEL_BINARY SOURCE_DIR MODELS_DIR   ($FLYWHEEL_MODELS wins)
#
# Exit 77 (CTest: skipped) without root, without Slurm/munge installed, or without the
# stories260K model; under CI=true, where all of them are there, those are failures.
set -euo pipefail

FLYWHEEL="$1"
SRC="$2"
MODELS="${FLYWHEEL_MODELS:-$3}"

skip() {
  if [[ "${CI:-}" == true ]]; then
    echo "FAILED: $* (under CI=true this test may not skip)"
    exit 1
  fi
  echo "SKIPPED: $*"
  exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root to run slurmctld and slurmd"
for tool in munged slurmctld slurmd sbatch scontrol sinfo; do
  command -v "$tool" >/dev/null || skip "$tool not installed (apt-get install slurm-wlm munge)"
done
[[ -f "$MODELS/stories260K/config.json" ]] || skip "$MODELS/stories260K not found"

TMP="$(mktemp -d /tmp/flywheel-slurm-XXXXXX)"
chmod 755 "$TMP"
HOST="$(hostname -s)"
PORT=$((16000 + RANDOM % 2000))

cleanup() {
  local pidfile
  for pidfile in "$TMP/slurmd.pid" "$TMP/slurmctld.pid" "$TMP/munged.pid"; do
    [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAILED: $*"
  for log in slurmctld.log slurmd.log job.out; do
    [[ -f $TMP/$log ]] && { echo "--- $log"; tail -n 40 "$TMP/$log"; }
  done
  exit 1
}

# munge, on a socket of our own so it never touches a munged the machine may already run.
mkdir -p "$TMP/munge"
chown munge:munge "$TMP/munge" 2>/dev/null || true
[[ -f /etc/munge/munge.key ]] || mungekey --create --keyfile /etc/munge/munge.key
munged --force --socket="$TMP/munge/munge.socket" --pid-file="$TMP/munged.pid" \
  --log-file="$TMP/munged.log" --seed-file="$TMP/munge.seed"

cat >"$TMP/slurm.conf" <<EOF
ClusterName=flywheeltest
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$TMP/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/slurmctld.log
SlurmdLogFile=$TMP/slurmd.log
NodeName=$HOST CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$TMP/state" "$TMP/spool"
export SLURM_CONF="$TMP/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

for _ in $(seq 60); do
  state="$(sinfo -h -o %T 2>/dev/null || true)"
  [[ $state == idle ]] && break
  sleep 1
done
[[ ${state:-} == idle ]] || fail "the node did not come up (sinfo: '${state:-}')"

# Story-completion data in stories260K's vocabulary, and a 6-step SFT recipe.
for i in $(seq 10); do
  printf '{"prompt": "Once upon a time, there was a", "completion": " little girl named Lily."}\n'
  printf '{"prompt": "The dog wanted to", "completion": " play in the park with his ball."}\n'
  printf '{"prompt": "One day, Tom saw a", "completion": " big red ball in the garden."}\n'
  printf '{"prompt": "The cat was very", "completion": " happy and sleepy in the sun."}\n'
done >"$TMP/sft.jsonl"
cat >"$TMP/sft.yaml" <<EOF
trainer: sft
output_dir: $TMP/run
model:
  path: $MODELS/stories260K
data:
  train_file: $TMP/sft.jsonl
training:
  max_steps: 6
  micro_batch_size: 2
  learning_rate: 1.0e-3
logging:
  progress: lines
distributed:
  zero_stage: 1
  rendezvous_timeout_s: 60
EOF

# The cluster has no GPUs: override the script's GPU line, keep everything else.
job="$(cd "$SRC" && sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 \
  --gpus-per-node=0 --mem=500 --time=10 --output="$TMP/job.out" \
  --export=ALL,FLYWHEEL="$FLYWHEEL" launch/slurm/train.sbatch "$TMP/sft.yaml")" ||
  fail "sbatch refused the job"
echo "submitted job $job"

for _ in $(seq 300); do
  jobstate="$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
  case "$jobstate" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;;
  esac
  sleep 1
done
[[ ${jobstate:-} == COMPLETED ]] || fail "job $job ended as '${jobstate:-unknown}'"

grep -q "x 2 ranks (slurm, ZeRO stage 1" "$TMP/job.out" || fail "the job did not run 2 Slurm ranks"
grep -q "^0: .*step 6/6" "$TMP/job.out" || fail "rank 0 did not log step 6"
steps="$(grep -c '"loss"' "$TMP/run/metrics.jsonl")"
[[ $steps -eq 6 ]] || fail "metrics.jsonl has $steps training steps, expected 6"
[[ -f $TMP/run/model/config.json ]] || fail "no final model"
[[ -f $TMP/run/checkpoints/step-00000006/optimizer-shard-1-of-2.safetensors ]] ||
  fail "no sharded optimizer state"
echo "PASSED: job $job trained 6 steps on 2 Slurm tasks"
