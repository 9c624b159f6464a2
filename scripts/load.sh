#!/usr/bin/env bash
# The load suite (tests/load) at a chosen size:
#
#   scripts/load.sh [RUNS] [extra pytest arguments]
#
# Starts a real Airflow on the CeleryExecutor (scheduler, dag-processor, api-server, triggerer, two
# Celery workers, a private redis-server; PostgreSQL on 127.0.0.1:5432, user postgres), triggers
# RUNS runs of the 20-step plan at once (default 50; CI runs 4): RUNS / 5 automation runs whose
# offline Claude plans it (at least 2; LOAD_AUTOMATION_RUNS overrides), the rest compiled runs of
# the plan file. It checks that every run succeeds with no duplicated effect and no lost output,
# and prints the figures (runs per minute, step queue delay, scheduler loop time) as markdown on
# stdout, ready for docs/scale.md. Task slots: LOAD_PARALLELISM (default 8), half of them per
# worker. Progress and pytest's report go to stderr.
# Exit status: pytest's. Heavy: on a shared machine run it as `flock /tmp/af-heavy.lock scripts/load.sh N`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${LOAD_RUNS:-50}"
case "${1:-}" in
  ''|-*) ;;
  *[!0-9]*|0|1) echo "usage: $0 [RUNS>=2] [pytest args]" >&2; exit 2;;
  *) runs="$1"; shift;;
esac
bash scripts/bootstrap.sh >&2
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
status=0
.venv/bin/python -m pytest tests/load -p no:cacheprovider -m load -s \
  --load-runs "$runs" --load-table "$table" "$@" >&2 || status=$?
cat "$table"
exit "$status"
