#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs lint + the whole test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# pytest exits 5 when it collects no test: that counts as a failure here.
.venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
