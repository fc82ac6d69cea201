#!/usr/bin/env bash
# Installs Flywheel's build and run dependencies from Debian 12's archive. Idempotent and
# non-interactive; safe to run on every build. Nothing is downloaded from anywhere else.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libtorch-dev libgloo-dev
  libopenblas0-openmp  # without it LibTorch falls back to reference BLAS (~20x slower matmul)
  libyaml-cpp-dev libspdlog-dev nlohmann-json3-dev zlib1g-dev
  libsentencepiece-dev sentencepiece
  libgtest-dev
  python3-torch  # the PyTorch reference for benchmarks and the real torchrun
  slurm-wlm munge  # a real single-node Slurm cluster for the launch test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
