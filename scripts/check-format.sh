#!/usr/bin/env bash
# Fails, naming each file and line, when a tracked C++ file differs from what clang-format
# (with the repository's .clang-format) would write. Run by CTest (test ClangFormat), so CI
# checks formatting. In a git checkout the tracked files; in an exported tree every C++ file
# outside build trees and the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.h' '*.cpp')
else
  mapfile -t files < <(find . \( -path './build*' -o -path './.venv' -o -path './.git' \) -prune \
    -o \( -name '*.h' -o -name '*.cpp' \) -type f -print | sort)
fi
clang-format --dry-run -Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
