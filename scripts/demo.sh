#!/usr/bin/env bash
# Run the demo automation in a real Airflow with the offline Claude (no API key needed).
# Leaves the UI up until Ctrl-C; `scripts/demo.sh --exit` runs to the end and exits (0 = success).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python scripts/demo.py "$@"
