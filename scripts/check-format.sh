#!/usr/bin/env bash
# Fails, naming each file and line, when a tracked C++ file differs from what clang-format
# (with the repository's .clang-format) would write. Run by CTest (test ClangFormat), so CI
# checks formatting; `git ls-files` keeps build trees and the venv out.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cpp')
clang-format --dry-run -Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
