#!/usr/bin/env bash
# Installs Flywheel's build and run dependencies: Debian 12 packages with apt-get, and LibTorch
# (PyPI's torch wheel, pinned with its dependencies in scripts/requirements.txt) into the
# project's virtual environment, .venv/ (or $FLYWHEEL_VENV). Idempotent and non-interactive;
# safe to run on every build. Nothing comes from anywhere but Debian's archive and PyPI.
#
# The build also needs a CUDA toolkit (nvcc, the runtime headers) of the wheel's CUDA version,
# 13.0: the wheel's CMake config requires one, and with it every CUDA code path is compiled.
# The project's machines carry it in /usr/local/cuda; see the README's "Building by hand".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  python3 python3-venv  # the virtual environment that holds LibTorch
  libyaml-cpp-dev nlohmann-json3-dev zlib1g-dev
  libsentencepiece-dev sentencepiece
  libpcre2-dev  # tokenizer.json pre-tokenizer regexes (Unicode properties, lookahead)
  libgtest-dev
  # The verifiers: Unicode properties and sentence breaks (ICU), language identification (CLD2),
  # linear-time regular expressions for format rules (RE2)
  libicu-dev libcld2-dev libre2-dev
  # Fuzzing the verifiers (clang's libFuzzer); see README, "Verifiers"
  clang libfuzzer-14-dev
  # Headers only: LibTorch's ProcessGroupGloo.hpp includes gloo's, and the wheel ships none.
  # Flywheel uses ProcessGroupGloo only through its constructor, options and c10d's Backend
  # interface, whose layout does not depend on the gloo version (the 2-rank tests check it).
  libgloo-dev
  slurm-wlm munge  # a real single-node Slurm cluster for the launch test
  gnuplot-nox  # `flywheel arena rate --plot`
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch. The requirements file is copied into the environment once installed, so an
# unchanged pin list costs nothing on the next run.
venv="${FLYWHEEL_VENV:-$ROOT/.venv}"
requirements="$ROOT/scripts/requirements.txt"
stamp="$venv/flywheel-requirements.txt"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  echo "install-deps: $venv up to date ($(grep -m1 '^torch==' "$requirements"))"
  exit 0
fi
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "install-deps: creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
echo "install-deps: installing $(grep -m1 '^torch==' "$requirements") and its dependencies into $venv"
"$venv/bin/pip" install --disable-pip-version-check --no-input -q -r "$requirements"
cp "$requirements" "$stamp"
