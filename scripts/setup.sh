#!/usr/bin/env bash
# Creates .venv (once) and installs vidssl with its test tools.
# On a machine without torch, torch is pinned to the CPU wheel 2.13.0 (constraints/cpu.txt) so pip
# never pulls a multi-GB CUDA build. A machine that already has a CUDA torch in the interpreter
# that runs this script keeps it (the venv sees system packages only when VIDSSL_SYSTEM_TORCH=1).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if [ "${VIDSSL_SYSTEM_TORCH:-0}" = 1 ]; then
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
stamp=.venv/.vidssl-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  constraint=()
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then constraint=(-c constraints/cpu.txt); fi
  .venv/bin/python -m pip install -q --disable-pip-version-check "${constraint[@]}" -e '.[dev]'
  touch "$stamp"
fi
