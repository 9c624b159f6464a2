#!/usr/bin/env bash
# Run the whole test suite (unit, fake-Claude and end-to-end tests against a real Airflow).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not e2e"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/browser.sh  # headless Chromium for tests/e2e/test_ui_e2e.py
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check airflow_claude tests dags benchmarks scripts
.venv/bin/mypy airflow_claude
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
