#!/usr/bin/env bash
# Installs Hugging Face Math-Verify (PyPI math-verify with the ANTLR 4.13.2 runtime) into its own
# virtual environment, .venv-mathverify/ (or $MATHVERIFY_VENV), for the MATH comparison benchmark
# only (bench/math_verify_reference.py; bench/run_math_verify.sh runs everything end to end).
# Versions are pinned in bench/requirements-mathverify.txt. Network (PyPI) is needed here, at
# install time only; the reference then runs offline.
# Usage: bash bench/install-mathverify.sh      (PYTHON=python3.11 by default)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MATHVERIFY_VENV:-$ROOT/.venv-mathverify}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
# --no-deps: the requirements list is the complete, pinned closure (checked below with pip check).
"$venv/bin/pip" install --disable-pip-version-check --no-input -q --no-deps \
  -r "$ROOT/bench/requirements-mathverify.txt"
"$venv/bin/pip" check --disable-pip-version-check

# Smoke test, offline: Math-Verify parses and compares with its default configuration.
"$venv/bin/python" "$ROOT/bench/math_verify_reference.py" --self-test
echo "install-mathverify: $("$venv/bin/python" - <<'PY'
import importlib.metadata as m
pkgs = ("math-verify", "latex2sympy2_extended", "antlr4-python3-runtime", "sympy", "mpmath")
print(", ".join(f"{p} {m.version(p)}" for p in pkgs))
PY
)"
