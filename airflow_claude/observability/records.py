"""One structured record per event, through the task logger, secrets masked.

Records carry ``dag_id``, ``run_id``, ``plan_id`` and ``step_id``; the metrics are derived from
them (``metrics.py``), so a count in a dashboard is a count of records in the logs. Event names are stable:
``plan.loaded``, ``plan.invalid``, ``step.started``, ``step.finished``, ``step.failed``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_claude.fingerprint import canonical_json
from airflow_claude.observability.metrics import record_metrics
from airflow_claude.observability.redaction import redact_value

RECORD_PREFIX = "airflow_claude"


def emit(log: Any, event: str, *, level: int = logging.INFO, **fields: Any) -> dict[str, Any]:
    """Log ``event`` with ``fields`` as one record and return the (redacted) record.

    The message is ``airflow_claude <event> <canonical JSON>`` so the record survives any log
    formatter and can be parsed back with :func:`parse_record`.
    """
    record = redact_value({"event": event, **fields})
    log.log(level, "%s %s %s", RECORD_PREFIX, event, canonical_json(record))
    record_metrics(event, record)
    return record


def parse_record(line: str) -> dict[str, Any] | None:
    """Decode a record from a log line: plain text, or a JSON log line whose ``event`` holds the message."""
    text = line.strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("event", ""))
        except (ValueError, AttributeError):
            pass
    marker = f"{RECORD_PREFIX} "
    start = text.find(marker)
    brace = text.find("{", start) if start >= 0 else -1
    if brace < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[brace:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
