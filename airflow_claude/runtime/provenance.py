"""What every step result is stamped with, and the idempotency key a tool can rely on."""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from airflow_claude.fingerprint import canonical_json, sha256_of

#: XCom key of a step's provenance record; ``return_value`` holds the tool's output itself.
PROVENANCE_XCOM_KEY = "airflow_claude_provenance"


class StepIdentity(NamedTuple):
    """Where a step comes from: the plan (id and hash), the step, the tool and its version.

    A tuple of strings: the garbage collector stops tracking it, which matters with one per
    task in every DAG of a large plans folder.
    """

    plan_id: str
    plan_hash: str
    step_id: str
    tool: str
    tool_version: str
    catalog_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def idempotency_key(dag_id: str, run_id: str, step_id: str, args: Any) -> str:
    """Stable across retries of one step in one run; different for different arguments or runs.

    Built from (dag_id, run_id, step_id, argument fingerprint), like Temporal's run id +
    activity id: an external system that stores it can refuse a second write.
    """
    material = canonical_json([dag_id, run_id, step_id, sha256_of(args)])
    return "ik_" + hashlib.sha256(material.encode()).hexdigest()[:40]


def provenance_record(
    identity: StepIdentity,
    *,
    dag_id: str,
    run_id: str,
    try_number: int,
    key: str,
    args_fingerprint: str,
    run_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The stamp pushed beside each result (XCom key :data:`PROVENANCE_XCOM_KEY`).

    ``run_values``: what the step's ``run.*`` and ``params.*`` references resolved to, by reference.
    """
    return {
        **identity.to_dict(),
        "dag_id": dag_id,
        "run_id": run_id,
        "try_number": try_number,
        "idempotency_key": key,
        "args_fingerprint": args_fingerprint,
        "run_values": run_values or {},
    }
