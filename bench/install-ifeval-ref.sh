#!/usr/bin/env bash
# Installs the reference IFEval checker (Google's code as packaged in PyPI lm-eval,
# lm_eval/tasks/ifeval/) into its own virtual environment, .venv-ifeval/ (or $IFEVAL_VENV), for
# the IFEval agreement benchmark only (bench/ifeval_reference.py, bench/ifeval_agreement.py).
# Versions are pinned in bench/requirements-ifeval.txt. Network (PyPI) is needed here, at install
# time only; the reference then runs offline.
#
# NLTK sentence counting needs the Punkt "punkt_tab" English parameters, which NLTK would
# otherwise download at import time. They are put into $venv/nltk_data/tokenizers/punkt_tab/
# (NLTK searches <sys.prefix>/nltk_data, i.e. the venv, by itself). Source, first that applies:
#   1. $IFEVAL_PUNKT_TAB: a local copy, either a punkt_tab.zip (as served by nltk_data,
#      packages/tokenizers/punkt_tab.zip) or a directory that holds english/ (a punkt_tab/ folder);
#   2. otherwise PyPI: llama-index-core ships NLTK's official punkt_tab data in its wheel
#      (llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/). The pinned wheel is downloaded
#      without dependencies, checked against its SHA-256, and only that folder is extracted;
#      llama-index itself is NOT installed. (The nltk_data GitHub snapshot available to us predates
#      punkt_tab and lacks punkt.zip, so it could not be used.)
# Usage: bash bench/install-ifeval-ref.sh      (PYTHON=python3.11 by default)
#
# The benchmark end to end (no network after this install):
#   bash bench/install-ifeval-ref.sh
#   python3 bench/ifeval_responses.py --out /tmp/ifeval/responses.jsonl
#   .venv-ifeval/bin/python bench/ifeval_reference.py \
#       --responses /tmp/ifeval/responses.jsonl --out /tmp/ifeval/reference.jsonl
#   build/bin/flywheel verify --in /tmp/ifeval/reference.jsonl --out /tmp/ifeval/ours.jsonl
#   python3 bench/ifeval_agreement.py --ref /tmp/ifeval/reference.jsonl --ours /tmp/ifeval/ours.jsonl
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${IFEVAL_VENV:-$ROOT/.venv-ifeval}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3

LLAMA_WHEEL="llama_index_core-0.14.25-py3-none-any.whl"
LLAMA_SHA256="caa7d9c5ac9b13dc33400cf8d5e92e689b6d1e4497eb9bfa50d6f52ca2eb22a1"
PUNKT_IN_WHEEL="llama_index/core/_static/nltk_cache/tokenizers/punkt_tab"

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
# --no-deps: the requirements list is the complete closure of what lm_eval/tasks/ifeval imports.
"$venv/bin/pip" install --disable-pip-version-check --no-input -q --no-deps \
  -r "$ROOT/bench/requirements-ifeval.txt"

dest="$venv/nltk_data/tokenizers/punkt_tab"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
if [[ -n "${IFEVAL_PUNKT_TAB:-}" ]]; then
  if [[ -d "$IFEVAL_PUNKT_TAB" ]]; then
    cp -r "$IFEVAL_PUNKT_TAB" "$dest"
  else
    # nltk_data's zip holds a top-level punkt_tab/ folder.
    "$venv/bin/python" -m zipfile -e "$IFEVAL_PUNKT_TAB" "$tmp/x"
    cp -r "$tmp/x/punkt_tab" "$dest"
  fi
  src="$IFEVAL_PUNKT_TAB"
else
  "$venv/bin/pip" download --disable-pip-version-check --no-input -q --no-deps \
    -d "$tmp" "llama-index-core==0.14.25"
  echo "$LLAMA_SHA256  $tmp/$LLAMA_WHEEL" | sha256sum -c --quiet -
  "$venv/bin/python" - "$tmp/$LLAMA_WHEEL" "$PUNKT_IN_WHEEL" "$dest" <<'PY'
import os, sys, zipfile
wheel, prefix, dest = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as f:
                f.write(z.read(name))
PY
  src="PyPI $LLAMA_WHEEL"
fi
for f in abbrev_types.txt collocations.tab ortho_context.tab sent_starters.txt; do
  [[ -s "$dest/english/$f" ]] || { echo "install-ifeval-ref: missing $dest/english/$f" >&2; exit 1; }
done

# Smoke test, offline: the ifeval modules import and Punkt/langdetect work.
"$venv/bin/python" "$ROOT/bench/ifeval_reference.py" --self-test
"$venv/bin/python" -c 'import importlib.metadata as m; print("install-ifeval-ref: lm-eval", m.version("lm-eval"), "nltk", m.version("nltk"), "langdetect", m.version("langdetect"))'
echo "install-ifeval-ref: punkt_tab from $src -> $dest"
