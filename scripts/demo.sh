#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the end-to-end demo; extra arguments go to `vidssl demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vidssl demo "$@"
