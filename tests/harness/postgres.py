"""Throw-away PostgreSQL databases on 127.0.0.1:5432 (user postgres, trust auth) for one test or module.

Celery deployments need PostgreSQL (the metadata database and Celery's result backend); each test
module gets a database of its own, so runs never see each other's rows and a failed run leaves nothing.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator

import psycopg2
from psycopg2 import sql

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
ADMIN_DSN = f"host={HOST} port={PORT} user={USER} dbname=postgres connect_timeout=5"


def database_url(name: str) -> str:
    """SQLAlchemy URL of database ``name`` on the local server (the form Airflow's ``sql_alchemy_conn`` takes)."""
    return f"postgresql+psycopg2://{USER}@{HOST}:{PORT}/{name}"


def postgres_available() -> bool:
    """Whether the local server answers (tests that need it skip otherwise)."""
    try:
        with contextlib.closing(psycopg2.connect(ADMIN_DSN)) as conn, conn.cursor() as cur:
            cur.execute("select 1")
            return cur.fetchone() == (1,)
    except psycopg2.Error:
        return False


def _admin(statement: sql.Composable) -> None:
    with contextlib.closing(psycopg2.connect(ADMIN_DSN)) as conn:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(statement)


def create_database(prefix: str) -> str:
    """Create a uniquely named database and return its name (``<prefix>_<12 hex>``)."""
    clean = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:40] or "af"
    name = f"{clean}_{uuid.uuid4().hex[:12]}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    """Drop database ``name``, ending whatever sessions still use it."""
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """Create a database, yield its SQLAlchemy URL, drop it afterwards (even when the body fails)."""
    name = create_database(prefix)
    try:
        yield database_url(name)
    finally:
        drop_database(name)
