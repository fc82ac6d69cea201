#!/usr/bin/env bash
# SFT and DPO training-step throughput, Flywheel (LibTorch) vs the same step in PyTorch-Python,
# side by side, and the Python step again under Flywheel's host-allocator policy
# ("pytorch-keepmem"). See bench/README.md.
#
#   bench/run_train_step.sh            # all cases, REPS repetitions each, table at the end
#
# Environment (all optional):
#   OMP_NUM_THREADS  threads for both sides (default: nproc)
#   REPS             repetitions per case and side, alternated (default 3); medians reported
#   STEPS, WARMUP    timed and warm-up steps per run (default 10 and 3)
#   CASES            "model:mode:batch:seq ..." to override the default cases
#   BUILD_DIR        the configured build directory (default build)
#   PYTHON           a Python with torch (default .venv/bin/python: the torch wheel whose
#                    LibTorch Flywheel links)
#   RESULTS          where the raw JSON lines go (default: a new file under /tmp)
#   BASELINE_BENCH   another build's flywheel_bench_train_step (e.g. before a change), run
#                    alternately with the others and reported as a "baseline" column
#   IDLE_PCT         before each run, wait until the machine is at least this % idle over
#                    2 s (default 85; 0 = do not wait) ...
#   IDLE_WAIT_S      ... but at most this long (default 900), then run anyway
#
# On a shared machine, other processes' CPU use during a run ruins it: with all cores in use
# by LibTorch's OpenMP team, a descheduled thread stalls every parallel region, and a step
# can take 10x longer. So each run waits for an idle machine, and the CPU time other processes
# used during the run is recorded with it ("foreign_cpu": busy core-seconds not ours / wall
# core-seconds); the table flags cases whose chosen runs saw more than 10%.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
REPS="${REPS:-3}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
RESULTS="${RESULTS:-$(mktemp /tmp/flywheel-train-step-XXXXXX.jsonl)}"
# Batch sizes give steps of roughly 0.3-2 s on a 2-core machine.
CASES="${CASES:-stories260K:sft:8:256 stories260K:dpo:4:256 llama-10m:sft:4:256 llama-10m:dpo:2:256}"

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "error: $PYTHON cannot import torch (run scripts/install-deps.sh or set PYTHON)" >&2
  exit 2
fi
if [[ ! -f "$BUILD_DIR/build.ninja" && ! -f "$BUILD_DIR/Makefile" ]]; then
  echo "error: $BUILD_DIR is not a configured build directory (run cmake first)" >&2
  exit 2
fi
echo "building flywheel_bench_train_step in $BUILD_DIR ..." >&2
cmake --build "$BUILD_DIR" --target flywheel_bench_train_step >&2
BENCH="$BUILD_DIR/bin/flywheel_bench_train_step"

# Busy and total jiffies of all CPUs since boot.
cpu_jiffies() {
  local _ user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# Percent idle over the next 2 s.
idle_pct() {
  local b1 t1 b2 t2
  read -r b1 t1 <<<"$(cpu_jiffies)"
  sleep 2
  read -r b2 t2 <<<"$(cpu_jiffies)"
  echo $((100 - 100 * (b2 - b1) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}

wait_for_idle() {
  local want="${IDLE_PCT:-85}" limit="${IDLE_WAIT_S:-900}" start=$SECONDS idle
  ((want > 0)) || return 0
  while idle="$(idle_pct)"; ((idle < want)); do
    if ((SECONDS - start >= limit)); then
      echo "  (machine still only $idle% idle after ${limit}s; running anyway)" >&2
      return 0
    fi
  done
}

# Our children's CPU time so far, in jiffies, into $ours. `times` must run in this shell (a
# command substitution's subshell would report its own, empty, children).
TIMES_FILE="$(mktemp)"
trap 'rm -f "$TIMES_FILE"' EXIT
children_jiffies() {
  times >"$TIMES_FILE"
  ours="$(tail -n 1 "$TIMES_FILE" | awk -v hz="$(getconf CLK_TCK)" '{ t = 0
    for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz }')"
}

# Flywheel's host-allocator policy (trainer/dist/runtime.h) applied to the Python baseline through
# glibc's tunables, to show how much of the difference is the allocator.
KEEPMEM="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"

config_for() {
  case "$1" in
    stories260K) echo "$ROOT/tests/data/stories260K/config.json" ;;
    *) echo "$ROOT/bench/configs/$1.json" ;;
  esac
}

: >"$RESULTS"
echo "threads=$OMP_NUM_THREADS reps=$REPS steps=$STEPS warmup=$WARMUP cores=$(nproc)" >&2
for case in $CASES; do
  IFS=: read -r model mode batch seq <<<"$case"
  config="$(config_for "$model")"
  if [[ ! -f "$config" ]]; then
    echo "skipping $model $mode: $config not found" >&2
    continue
  fi
  args=(--config "$config" --mode "$mode" --batch "$batch" --seq "$seq" --steps "$STEPS"
        --warmup "$WARMUP" --seed 0)
  for rep in $(seq 1 "$REPS"); do
    # Alternate which side goes first, so a slow drift in machine load hits both alike.
    if ((rep % 2 == 1)); then
      order=(pytorch pytorch-keepmem flywheel)
    else
      order=(flywheel pytorch-keepmem pytorch)
    fi
    [[ -n "${BASELINE_BENCH:-}" ]] && order+=(baseline)
    for impl in "${order[@]}"; do
      wait_for_idle
      read -r busy0 total0 <<<"$(cpu_jiffies)"
      children_jiffies
      ours0=$ours
      if [[ $impl == pytorch ]]; then
        line="$("$PYTHON" bench/train_step_bench.py "${args[@]}")"
      elif [[ $impl == pytorch-keepmem ]]; then
        line="$(GLIBC_TUNABLES="$KEEPMEM" "$PYTHON" bench/train_step_bench.py "${args[@]}")"
        line="${line/\"impl\": \"pytorch\"/\"impl\": \"pytorch-keepmem\"}"
      elif [[ $impl == baseline ]]; then
        line="$("$BASELINE_BENCH" "${args[@]}")"
        line="${line/\"impl\":\"flywheel\"/\"impl\":\"baseline\"}"
      else
        line="$("$BENCH" "${args[@]}")"
      fi
      read -r busy1 total1 <<<"$(cpu_jiffies)"
      children_jiffies
      ours1=$ours
      foreign="$(awk -v b=$((busy1 - busy0)) -v o=$((ours1 - ours0)) -v t=$((total1 - total0)) \
        'BEGIN { f = t > 0 ? (b - o) / t : 0; printf "%.3f", f < 0 ? 0 : f }')"
      line="${line%\}}, \"foreign_cpu\": $foreign}"
      echo "$line" >>"$RESULTS"
      echo "  [$model $mode rep $rep] $line" >&2
    done
  done
done

"$PYTHON" - "$RESULTS" <<'EOF'
import json, statistics, sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["model"], r["mode"], r["batch"], r["seq"])].append(r)

def tok_s(r):  # from the median step time: robust to a burst of load on a shared machine
    return r["tokens_per_step"] * 1000.0 / r["step_ms_median"]

print()
print(f"{'model':<12} {'mode':<4} {'params':>9} {'batch x seq':>12} {'tok/step':>8} "
      f"{'pytorch':>8} {'py-keepmem':>10} {'flywheel':>8} {'ratio':>6} {'ratio-km':>8}  "
      f"first-step loss (py / fw)")
for (model, mode, batch, seq), rs in runs.items():
    py = [r for r in rs if r["impl"] == "pytorch"]
    km = [r for r in rs if r["impl"] == "pytorch-keepmem"]
    fw = [r for r in rs if r["impl"] == "flywheel"]
    bl = [r for r in rs if r["impl"] == "baseline"]
    if not py or not km or not fw:
        continue
    p = statistics.median(tok_s(r) for r in py)
    k = statistics.median(tok_s(r) for r in km)
    f = statistics.median(tok_s(r) for r in fw)
    base = f"  baseline {statistics.median(tok_s(r) for r in bl):.0f} tok/s" if bl else ""
    busy = max(r.get("foreign_cpu", 0) for r in py + km + fw + bl) > 0.10
    lp, lf = py[0]["first_loss"], fw[0]["first_loss"]
    same = abs(lp - lf) <= 1e-4 * max(1.0, abs(lp))
    shape = f"{batch}x{seq}" if mode == "sft" else f"{batch}x2x{seq}"
    print(f"{model:<12} {mode:<4} {fw[0]['params']:>9} {shape:>12} {fw[0]['tokens_per_step']:>8} "
          f"{p:>8.0f} {k:>10.0f} {f:>8.0f} {f / p:>6.2f} {f / k:>8.2f}  {lp:.5f} / {lf:.5f}"
          + ("" if same else "  LOSS MISMATCH") + base + ("  (busy machine)" if busy else ""))
print()
all_runs = [r for rs in runs.values() for r in rs]
threads = sorted({r["threads"] for r in all_runs})
print(f"threads {threads}; tokens/s from the median over runs of each run's median step time")
print("ratio = flywheel / pytorch, ratio-km = flywheel / py-keepmem (>= 1: Flywheel at least "
      "as fast)")
print(f"raw results: {sys.argv[1]}")
EOF
