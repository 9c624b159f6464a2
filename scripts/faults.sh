#!/usr/bin/env bash
# The fault-injection suite (tests/faults) at a chosen size:
#
#   scripts/faults.sh [RUNS_PER_FAULT] [--executor local|celery] [extra pytest arguments]
#
# Starts a real Airflow (scheduler, dag-processor, api-server, triggerer; LocalExecutor, or with
# `--executor celery` CeleryExecutor with two workers and a private Redis broker) on a fresh
# PostgreSQL database (127.0.0.1:5432, user postgres; PGHOST/PGPORT/PGUSER are not read), runs
# every fault RUNS_PER_FAULT times (default 5; CI runs 1), and prints the figures as a markdown
# table on stdout, ready for docs/reliability.md. Progress and pytest's report go to stderr.
# Exit status: pytest's (non-zero when a promise was broken).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${FAULTS_RUNS_PER_FAULT:-5}"
case "${1:-}" in
  ''|-*) ;;                                   # no size given: the default
  *[!0-9]*|0) echo "usage: $0 [RUNS_PER_FAULT>=1] [pytest args, e.g. --fault crash_after_commit]" >&2; exit 2;;
  *) runs="$1"; shift;;
esac
suite=tests/faults/test_faults.py
args=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --executor) [ "$#" -ge 2 ] || { echo "$0: --executor needs local or celery" >&2; exit 2; }
                set -- "--executor=$2" "${@:3}"; continue;;
    --executor=local) suite=tests/faults/test_faults.py;;
    --executor=celery) suite=tests/faults/test_faults_celery.py;;
    --executor=*) echo "$0: --executor is local or celery, not ${1#--executor=}" >&2; exit 2;;
    *) args+=("$1");;
  esac
  shift
done
bash scripts/bootstrap.sh >&2
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
status=0
.venv/bin/python -m pytest "$suite" -p no:cacheprovider -m faults -s \
  --runs-per-fault "$runs" --every-fault --faults-table "$table" ${args[@]+"${args[@]}"} >&2 || status=$?
cat "$table"
exit "$status"
