#!/usr/bin/env bash
# The rule-based verifiers under the sanitizers and the fuzzer (README, "Verifiers"):
#
#   bash scripts/check-verifiers.sh sanitize        # their tests under ASan + UBSan
#   bash scripts/check-verifiers.sh fuzz [SECONDS]  # each libFuzzer target for SECONDS (300)
#
# Builds with clang into build-verifier-checks/ (no torch: seconds, not minutes). The fuzzers
# start from the hand-written case tables and keep what they find in
# build-verifier-checks/corpus-*; a crash leaves its input as crash-* there and fails the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-sanitize}"
out="$ROOT/build-verifier-checks/$mode"
fuzz=OFF
[[ $mode == fuzz ]] && fuzz=ON
[[ $mode == sanitize || $mode == fuzz ]] || { echo "usage: $0 sanitize | fuzz [SECONDS]" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "error: clang++ missing (scripts/install-deps.sh)" >&2; exit 2; }
cmake -S "$ROOT/tests/verifiers/standalone" -B "$out" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DFLYWHEEL_FUZZ="$fuzz" >/dev/null
cmake --build "$out"
if [[ $mode == sanitize ]]; then
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$out/verifier_tests"
  exit
fi
seconds="${2:-300}"
for target in math ifeval; do
  corpus="$out/corpus-$target"
  mkdir -p "$corpus"
  # Seeds: every response and ground truth of the case tables, one file each.
  python3 - "$ROOT/tests/data/verifiers" "$corpus" <<'PY'
import json, pathlib, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for table in src.glob("*.jsonl"):
    for i, line in enumerate(table.read_text().splitlines()):
        row = json.loads(line)
        text = row["response"] + ("\0" + row["ground_truth"] if "ground_truth" in row else "")
        (dst / f"seed-{table.stem}-{i}").write_bytes(text.encode())
PY
  echo "fuzzing $target for ${seconds}s"
  (cd "$out" && "./fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "$corpus")
done
