#!/usr/bin/env bash
# Installs the pinned peers of bench/requirements.txt (transformers, trl, tokenizers,
# math-verify, lm-eval, alpaca-eval, fschat, ...) into the project's virtual environment, for
# benchmarks and fixture generation only. Run scripts/install-deps.sh first: it creates .venv
# with the torch wheel, which the pins below are resolved against and never replace.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FLYWHEEL_VENV:-$ROOT/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "install-peers: $venv does not exist; run scripts/install-deps.sh first" >&2
  exit 2
fi
"$venv/bin/pip" install --disable-pip-version-check --no-input -q \
  -r "$ROOT/bench/requirements.txt" -c "$ROOT/scripts/requirements.txt"
"$venv/bin/python" - <<'PY'
import importlib.metadata as m
names = ["torch", "transformers", "trl", "tokenizers", "math-verify", "lm_eval", "alpaca_eval",
         "fschat", "langdetect", "nltk", "scikit-learn"]
print("install-peers: " + ", ".join(f"{n} {m.version(n)}" for n in names))
PY
