"""The load suite's effects ledger: a PostgreSQL database outside Airflow that the mutating tools write to.

``effects`` holds one row per performed effect, keyed by the step's idempotency key (a retried
write with the same key is absorbed by ``ON CONFLICT DO NOTHING``); ``writes`` holds one row per
write attempt and what it did (``inserted`` or ``conflict``). A duplicated effect is a second row
for one step of one run, counted here, not inferred from Airflow's bookkeeping.

Used by the tools inside Airflow's task processes (DSN from ``LOAD_EFFECTS_DSN``) and by the test.
Only psycopg2 and the standard library: DAG files import it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg2
import psycopg2.extras

DSN_ENV = "LOAD_EFFECTS_DSN"

SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    idempotency_key text PRIMARY KEY,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    step_id text NOT NULL,
    tool text NOT NULL,
    try_number integer NOT NULL,
    payload jsonb NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS effects_step ON effects (dag_id, run_id, step_id);
CREATE TABLE IF NOT EXISTS writes (
    id serial PRIMARY KEY,
    idempotency_key text NOT NULL,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    step_id text NOT NULL,
    outcome text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


def create_schema(url: str) -> None:
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(SCHEMA)
    finally:
        conn.close()


def write(key: str, dag_id: str, run_id: str, step_id: str, tool: str, try_number: int, payload: dict[str, Any]) -> str:
    """Perform the effect once per key (in one transaction with its ``writes`` row); return the key stored."""
    conn = psycopg2.connect(os.environ[DSN_ENV], connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO effects (idempotency_key, dag_id, run_id, step_id, tool, try_number, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1",
                (key, dag_id, run_id, step_id, tool, try_number, json.dumps(payload)),
            )
            outcome = "inserted" if cur.fetchone() else "conflict"
            cur.execute(
                "INSERT INTO writes (idempotency_key, dag_id, run_id, step_id, outcome) VALUES (%s, %s, %s, %s, %s)",
                (key, dag_id, run_id, step_id, outcome),
            )
    finally:
        conn.close()
    return key


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run a query on the ledger (the test's side)."""
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()
