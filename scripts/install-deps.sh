#!/usr/bin/env bash
# Install slime's Python dependencies into the active Python environment.
#
#   bash scripts/install-deps.sh cpu        # CPU-only machine: CPU torch, SGLang without its CUDA deps
#   bash scripts/install-deps.sh gpu        # GPU cluster node: SGLang with its pinned CUDA torch
#   bash scripts/install-deps.sh cpu --dev  # plus the test tools
#
# Then this checkout itself, editable (pip install -e): tools/*.py, train.py and the tests import the
# slime package from here, whatever the current folder.
set -euo pipefail

usage() {
  echo "usage: bash scripts/install-deps.sh cpu|gpu [--dev]" >&2
  exit 2
}

main() {
  local target="${1:-}" dev="${2:-}" root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  [[ "${target}" == cpu || "${target}" == gpu ]] || usage
  [[ -z "${dev}" || "${dev}" == --dev ]] || usage

  python -m pip install --upgrade pip
  if [[ "${target}" == cpu ]]; then
    # torch first, so nothing below resolves an unpinned torch to a CUDA build.
    python -m pip install "torch==2.13.0"
    python -m pip install -r "${root}/requirements-train-cpu.txt"
    python -m pip install --no-deps -r "${root}/requirements-sglang.txt"
  else
    python -m pip install -r "${root}/requirements-train.txt"
  fi
  if [[ "${dev}" == --dev ]]; then
    python -m pip install -r "${root}/requirements-dev.txt"
  fi
  python -m pip install --no-deps -e "${root}"
}

main "$@"
