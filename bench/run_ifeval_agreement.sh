#!/usr/bin/env bash
# Flywheel's IFEval checker vs Google's reference (as packaged in lm-eval), instruction by
# instruction, strict and loose, on responses written for IFEval's 541 prompts:
#   1. responses   bench/ifeval_responses.py: ~3 per prompt, each instruction satisfied in some
#                  and violated in others, with the edge cases of the reference's semantics
#   2. reference   bench/ifeval_reference.py in .venv-ifeval/ (bench/install-ifeval-ref.sh if
#                  missing; that step alone needs PyPI); langdetect seeded for reproducibility
#   3. ours        build/bin/flywheel verify on the reference's rows (same instructions)
#   4. agreement   bench/ifeval_agreement.py: per-id table and every disagreement's example
# Outputs in $OUT (default /tmp/ifeval): responses.jsonl, reference.jsonl, ours.jsonl, report.txt.
#
# Usage: bash bench/run_ifeval_agreement.sh      (env: OUT, FLYWHEEL, PYTHON)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/ifeval}"
FLYWHEEL="${FLYWHEEL:-$ROOT/build/bin/flywheel}"
PYTHON="${PYTHON:-python3}"
VENV="${IFEVAL_VENV:-$ROOT/.venv-ifeval}"
mkdir -p "$OUT"
[[ -x "$FLYWHEEL" ]] || { echo "run_ifeval_agreement: $FLYWHEEL not built" >&2; exit 1; }
[[ -x "$VENV/bin/python" ]] || bash "$ROOT/bench/install-ifeval-ref.sh"

"$PYTHON" "$ROOT/bench/ifeval_responses.py" --out "$OUT/responses.jsonl"
"$VENV/bin/python" "$ROOT/bench/ifeval_reference.py" --responses "$OUT/responses.jsonl" \
  --out "$OUT/reference.jsonl"
"$FLYWHEEL" verify --in "$OUT/reference.jsonl" --out "$OUT/ours.jsonl"
"$PYTHON" "$ROOT/bench/ifeval_agreement.py" --ref "$OUT/reference.jsonl" --ours "$OUT/ours.jsonl" \
  --report "$OUT/report.txt"
