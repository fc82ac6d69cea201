#!/usr/bin/env bash
# After ctest: how many tests skipped, and why (the reason each test printed), read from
# CTest's log of the last run. CTest counts a skipped test as passed, so "100% tests passed"
# alone does not say what ran.
#
#   scripts/skipped-tests.sh [BUILD_DIR]
set -euo pipefail
log="${1:-build}/Testing/Temporary/LastTest.log"
[[ -f "$log" ]] || { echo "skipped-tests.sh: no $log (run ctest first)" >&2; exit 2; }
awk '
  /^[0-9]+\/[0-9]+ Test: / { name = $3; reason = ""; next }
  /: Skipped$/ { if ((getline line) > 0) reason = line; next }  # GoogleTest: the reason follows
  /^SKIPPED: / { reason = substr($0, 10); next }                # the Slurm test script
  /^<end of output>$/ {
    if (reason != "") { skipped[++n] = name ": " reason }
    reason = ""
  }
  END {
    printf "tests skipped: %d\n", n
    for (i = 1; i <= n; ++i) print "  " skipped[i]
  }
' "$log"
