#!/usr/bin/env bash
# One-step set-up: a virtual environment in .venv with the right torch build and ffasora installed.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    # A GPU machine: the default PyPI build of torch carries CUDA.
    .venv/bin/pip install -q "torch>=2.4"
  else
    # CPU only: the CPU build, installed first so that no dependency pulls in a CUDA build.
    .venv/bin/pip install -q torch==2.13.0 || .venv/bin/pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
stamp=.venv/.ffasora-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi
