#!/usr/bin/env bash
# `flywheel arena winrate --length-controlled` vs AlpacaEval's own GLM (alpaca_eval 0.6.x in
# .venv, run by bench/lc_winrate_reference.py) on the same synthetic battles:
#   1. battles    805 instructions with a planted difficulty, four players and two "gamed" ones
#                 (the baseline prompted verbose / concise), a judge that prefers longer answers
#   2. cases      v1     --gamed baseline_verbose --gamed baseline_concise, difficulty fitted
#                 noreg  no gamed players, difficulty fitted
#                 table  no gamed players, the planted difficulty passed as --difficulty
#   3. compare    per player: raw and LC win rates and their standard errors, ours - AlpacaEval
# AlpacaEval's fits stop at liblinear's default tolerance (1e-4) and Flywheel's at 1e-10, so the
# LC numbers differ in the third decimal; LIBLINEAR_TOL=1e-7 reruns the reference tighter to
# show the difference shrink (the v1 and noreg cases then take minutes).
# Usage: bash bench/run_lc_winrate.sh      (env: OUT, FLYWHEEL, PYTHON, LIBLINEAR_TOL)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/lc_winrate}"
FLYWHEEL="${FLYWHEEL:-$ROOT/build/bin/flywheel}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
REF="$ROOT/bench/lc_winrate_reference.py"
mkdir -p "$OUT"
[[ -x "$FLYWHEEL" ]] || { echo "run_lc_winrate: $FLYWHEEL not built" >&2; exit 1; }

"$PYTHON" "$REF" battles --out "$OUT/battles.jsonl"
declare -A FLAGS=(
  [v1]="--gamed baseline_verbose --gamed baseline_concise"
  [noreg]=""
  [table]="--difficulty $OUT/battles.difficulty.jsonl"
)
for case in v1 noreg table; do
  echo "== $case: ${FLAGS[$case]:-(no flags)}"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$FLYWHEEL" arena winrate --battles "$OUT/battles.jsonl" --baseline baseline \
    --length-controlled ${FLAGS[$case]} --json > "$OUT/ours_$case.json"
  ours_s=$(echo "$(date +%s.%N) - $start" | bc)
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$PYTHON" "$REF" rate --battles "$OUT/battles.jsonl" --baseline baseline ${FLAGS[$case]} \
    ${LIBLINEAR_TOL:+--liblinear-tol $LIBLINEAR_TOL} --out "$OUT/ref_$case.json" > /dev/null
  ref_s=$(echo "$(date +%s.%N) - $start" | bc)
  printf "flywheel %.2f s, AlpacaEval %.2f s\n" "$ours_s" "$ref_s"
  "$PYTHON" "$REF" compare "$OUT/ours_$case.json" "$OUT/ref_$case.json"
done
