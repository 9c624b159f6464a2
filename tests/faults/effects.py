"""The external effects ledger: a PostgreSQL database the example tools write their side effects to.

It is *outside* Airflow on purpose: duplicates are counted here, not inferred from Airflow's own
bookkeeping. Two tables:

- ``effects``: one row per performed side effect, keyed by the step's idempotency key (a
  retried write with the same key is absorbed by ``ON CONFLICT DO NOTHING``). A compensation
  writes its own row and marks the row it undoes (``undone_by``).
- ``attempts``: one row per attempted write, committed *before* the write, so an attempt
  killed before it could write is still counted; ``outcome`` says what the write did
  (``inserted``, ``conflict`` = absorbed by the key, ``NULL`` = never reached the write);
  ``sid`` is the process session, which names the Celery worker that ran the try.
- ``faults_fired``: one row per injected fault, so a fault fires a set number of times per step
  and run whatever Airflow's try numbers are, and the test can check it really fired;
- ``releases``: names the test inserts to let ``hold`` faults go on.

Used by the tools inside Airflow's task processes (DSN from ``FAULTS_EFFECTS_DSN``) and by the
test process (figures). Only psycopg2 and the standard library: DAG files import it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extras

DSN_ENV = "FAULTS_EFFECTS_DSN"

SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    idempotency_key text PRIMARY KEY,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    step_id text NOT NULL,
    tool text NOT NULL,
    try_number integer NOT NULL,
    payload jsonb NOT NULL,
    undone_by text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS effects_step ON effects (dag_id, run_id, step_id);
CREATE TABLE IF NOT EXISTS attempts (
    id serial PRIMARY KEY,
    idempotency_key text NOT NULL,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    step_id text NOT NULL,
    tool text NOT NULL,
    try_number integer NOT NULL,
    pid integer NOT NULL,
    ppid integer NOT NULL,
    sid integer,
    fault text,
    outcome text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS attempts_run ON attempts (dag_id, run_id, step_id);
CREATE TABLE IF NOT EXISTS faults_fired (
    id serial PRIMARY KEY,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    step_id text NOT NULL,
    kind text NOT NULL,
    try_number integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS releases (
    name text PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


def dsn() -> str:
    value = os.environ.get(DSN_ENV)
    if not value:
        raise RuntimeError(f"{DSN_ENV} is not set: the fault-suite tools need the effects ledger")
    return value


@contextmanager
def connection(url: str | None = None, *, autocommit: bool = False) -> Iterator[Any]:
    conn = psycopg2.connect(url or dsn(), connect_timeout=10)
    conn.autocommit = autocommit
    try:
        yield conn
        if not autocommit:
            conn.commit()
    except BaseException:
        if not autocommit:
            conn.rollback()
        raise
    finally:
        conn.close()


def create_schema(url: str) -> None:
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)


# ---------------------------------------------------------------- used by the tools


def begin_attempt(ctx: Any, tool: str, fault: str | None) -> int:
    """Record an attempted write (committed at once, so a crash after this line is still counted)."""
    with connection(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO attempts (idempotency_key, dag_id, run_id, step_id, tool, try_number, pid, ppid, sid, fault)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                ctx.idempotency_key,
                ctx.dag_id,
                ctx.run_id,
                ctx.step_id,
                tool,
                ctx.try_number,
                os.getpid(),
                os.getppid(),
                os.getsid(0),  # the session of the component that ran it (which Celery worker)
                fault,
            ),
        )
        return int(cur.fetchone()[0])


def write_effect(ctx: Any, tool: str, payload: dict[str, Any], attempt_id: int) -> dict[str, Any]:
    """Perform the effect once per idempotency key; return the stored row (the first write's)."""
    with connection() as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "INSERT INTO effects (idempotency_key, dag_id, run_id, step_id, tool, try_number, payload)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
            (ctx.idempotency_key, ctx.dag_id, ctx.run_id, ctx.step_id, tool, ctx.try_number, json.dumps(payload)),
        )
        inserted = cur.fetchone() is not None
        cur.execute(
            "UPDATE attempts SET outcome = %s WHERE id = %s", ("inserted" if inserted else "conflict", attempt_id)
        )
        cur.execute(
            "SELECT idempotency_key, try_number, payload FROM effects WHERE idempotency_key = %s",
            (ctx.idempotency_key,),
        )
        return dict(cur.fetchone())


def undo_effect(ctx: Any, tool: str, original_key: str, attempt_id: int) -> dict[str, Any]:
    """A compensation: its own effect row (once per key) and the undone row marked (once)."""
    with connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM effects WHERE idempotency_key = %s", (original_key,))
        if cur.fetchone() is None:
            raise RuntimeError(f"{tool}: there is no effect {original_key} to undo")
    row = write_effect(ctx, tool, {"undoes": original_key}, attempt_id)
    with connection() as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE effects SET undone_by = %s WHERE idempotency_key = %s AND undone_by IS NULL",
            (ctx.idempotency_key, original_key),
        )
    return row


def fire(ctx: Any, kind: str, times: int | None) -> bool:
    """Whether the fault fires now: at most ``times`` times per step and run (None: always). Recorded."""
    with connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{ctx.run_id}/{ctx.step_id}",))
        cur.execute(
            "SELECT count(*) FROM faults_fired WHERE dag_id = %s AND run_id = %s AND step_id = %s",
            (ctx.dag_id, ctx.run_id, ctx.step_id),
        )
        if times is not None and int(cur.fetchone()[0]) >= times:
            return False
        cur.execute(
            "INSERT INTO faults_fired (dag_id, run_id, step_id, kind, try_number) VALUES (%s, %s, %s, %s, %s)",
            (ctx.dag_id, ctx.run_id, ctx.step_id, kind, ctx.try_number),
        )
        return True


def released(name: str) -> bool:
    """Whether the test released the ``hold`` faults named ``name``."""
    with connection(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM releases WHERE name = %s", (name,))
        return cur.fetchone() is not None


# ---------------------------------------------------------------- used by the test


def release(url: str, name: str) -> None:
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO releases (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with connection(url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(sql, params)
        return [dict(r) for r in cur.fetchall()]


def effects_of(url: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return rows(url, "SELECT * FROM effects WHERE dag_id = %s AND run_id = %s ORDER BY at", (dag_id, run_id))


def attempts_of(url: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return rows(url, "SELECT * FROM attempts WHERE dag_id = %s AND run_id = %s ORDER BY id", (dag_id, run_id))


def fired_of(url: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return rows(url, "SELECT * FROM faults_fired WHERE dag_id = %s AND run_id = %s ORDER BY id", (dag_id, run_id))


def holding(url: str, fault: str) -> list[dict[str, Any]]:
    """Attempts that stopped before writing on purpose (``hold``/``sigkill_*`` faults), not yet written."""
    return rows(url, "SELECT * FROM attempts WHERE fault = %s AND outcome IS NULL ORDER BY id", (fault,))


def written_and_waiting(url: str, fault: str) -> list[dict[str, Any]]:
    """Attempts that wrote their effect and then wait to be killed (``sigkill_worker_after_commit``)."""
    return rows(url, "SELECT * FROM attempts WHERE fault = %s AND outcome IS NOT NULL ORDER BY id", (fault,))
