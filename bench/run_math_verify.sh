#!/usr/bin/env bash
# Flywheel's MATH answer checker vs Hugging Face Math-Verify, end to end, on MATH-500:
#   1. rows        bench/math_verify_rows.py: reference solutions, wrong answers (last number + 1,
#                  negated), equivalent rewrites, each labelled (stdlib Python)
#   2. reference   bench/math_verify_reference.py in .venv-mathverify/ (installed by
#                  bench/install-mathverify.sh if missing; that step alone needs PyPI)
#   3. ours        build/bin/flywheel verify on the same rows, --threads 1 and --threads $(nproc)
#                  (agreement run), then again on the rows repeated $REPEAT times for a stable
#                  rows/s (flywheel scores 1.8k rows in a few tens of milliseconds)
#   4. compare     bench/math_verify_compare.py: per-kind table, throughput, disagreement report
# Outputs go to $OUT (default /tmp/mathverify): rows.jsonl, mathverify.jsonl(+.timing.json),
# ours_t1.jsonl, ours_t<nproc>.jsonl, *.log, table.txt, report.md.
#
# Threads: flywheel verify scores on its own std::thread pool of --threads workers (0/absent = all
# hardware threads); it uses no OpenMP, but the binary links libtorch's libgomp, so
# OMP_NUM_THREADS=1 is set to keep that pool from starting threads of its own. Math-Verify runs in
# ONE process on one thread (its timeouts use SIGALRM, which only works on the main thread; it is
# pure Python + sympy, no BLAS). So compare flywheel --threads 1 with Math-Verify for per-core
# speed; --threads $(nproc) is what the machine gives. Math-Verify also reports its CPU time, the
# robust number when other work shares the machine (the idle share of the CPUs is printed first).
#
# Usage: bash bench/run_math_verify.sh      (env: OUT, FLYWHEEL, REPEAT, PYTHON)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/mathverify}"
FLYWHEEL="${FLYWHEEL:-$ROOT/build/bin/flywheel}"
REPEAT="${REPEAT:-50}"
PYTHON="${PYTHON:-python3}"
VENV="${MATHVERIFY_VENV:-$ROOT/.venv-mathverify}"
NPROC="$(nproc)"
export OMP_NUM_THREADS=1

mkdir -p "$OUT"
[[ -x "$FLYWHEEL" ]] || { echo "run_math_verify: $FLYWHEEL not built" >&2; exit 1; }
[[ -x "$VENV/bin/python" ]] || bash "$ROOT/bench/install-mathverify.sh"

commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== machine: $NPROC hardware threads; OMP_NUM_THREADS=$OMP_NUM_THREADS;" \
  "flywheel at commit $commit (binary built $(date -r "$FLYWHEEL" '+%F %T'))"
echo "== Math-Verify: $("$VENV/bin/python" - <<'PY'
import importlib.metadata as m
pkgs = ("math-verify", "latex2sympy2_extended", "antlr4-python3-runtime", "sympy", "mpmath")
print(", ".join(f"{p} {m.version(p)}" for p in pkgs))
PY
)"

# How busy the machine is anyway (other users' builds skew wall-clock rates).
read -r _ u1 n1 s1 i1 _ < /proc/stat
sleep 2
read -r _ u2 n2 s2 i2 _ < /proc/stat
idle=$((100 * (i2 - i1) / (u2 + n2 + s2 + i2 - u1 - n1 - s1 - i1)))
echo "== CPU idle over 2 s before the run: $idle%"

echo "== 1. rows"
"$PYTHON" "$ROOT/bench/math_verify_rows.py" --out "$OUT/rows.jsonl"

echo "== 2. Math-Verify (1 process)"
"$VENV/bin/python" "$ROOT/bench/math_verify_reference.py" \
  --rows "$OUT/rows.jsonl" --out "$OUT/mathverify.jsonl"

echo "== 3. flywheel verify"
# flywheel's stderr (its summary, with the scoring time and rows/s) plus the whole process's wall
# and CPU time (JSON reading and writing included) go to LOG.
fw_verify() {
  local log="$1"
  shift
  { TIMEFORMAT='process: %R s wall, %U s user, %S s sys'; time "$FLYWHEEL" verify "$@"; } 2> "$log"
}
for t in 1 "$NPROC"; do
  fw_verify "$OUT/ours_t$t.log" --in "$OUT/rows.jsonl" --out "$OUT/ours_t$t.jsonl" --threads "$t"
done
# Throughput: the same rows $REPEAT times over (verdicts not used).
big="$OUT/rows_x$REPEAT.jsonl"
for ((i = 0; i < REPEAT; i++)); do cat "$OUT/rows.jsonl"; done > "$big"
for t in 1 "$NPROC"; do
  fw_verify "$OUT/tput_t$t.log" --in "$big" --out "$OUT/tput_t$t.jsonl" --threads "$t"
  rm -f "$OUT/tput_t$t.jsonl"
done
rm -f "$big"
tail -n 2 "$OUT/ours_t1.log" "$OUT/ours_t$NPROC.log" "$OUT/tput_t1.log" "$OUT/tput_t$NPROC.log"

echo "== 4. compare"
"$PYTHON" "$ROOT/bench/math_verify_compare.py" \
  --ours "$OUT/ours_t1.jsonl" --ours-other "$OUT/ours_t$NPROC.jsonl" \
  --mv "$OUT/mathverify.jsonl" --mv-timing "$OUT/mathverify.jsonl.timing.json" \
  --report "$OUT/report.md" \
  --ours-log "rows, 1 thread=$OUT/ours_t1.log" \
  --ours-log "rows, $NPROC threads=$OUT/ours_t$NPROC.log" \
  --ours-log "rows x$REPEAT, 1 thread=$OUT/tput_t1.log" \
  --ours-log "rows x$REPEAT, $NPROC threads=$OUT/tput_t$NPROC.log" \
  | tee "$OUT/table.txt"
echo "== done: $OUT/table.txt, $OUT/report.md"
