"""The ``run`` namespace of references: the values of the DAG run a step runs in.

A closed set, each with a JSON Schema, so the validator type-checks ``{"$ref": "run.<field>"}``
against the consuming tool's input as it does step references. Timestamps are ISO 8601 in UTC,
dates are ``YYYY-MM-DD`` (UTC). ``data_interval_last_ds`` is the day of the interval's last
instant: with an end-inclusive date filter, ``data_interval_start_ds`` .. ``data_interval_last_ds``
covers the interval exactly, whatever the schedule (a day, a week, a month).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple


class RunField(NamedTuple):
    schema: dict[str, Any]
    description: str
    #: needs the run's logical date and data interval (a manual run without a logical date has neither)
    needs_interval: bool = True


_TIMESTAMP = {"type": "string", "format": "date-time"}
_DATE = {"type": "string", "format": "date"}

RUN_FIELDS: dict[str, RunField] = {
    "run_id": RunField({"type": "string"}, "The DAG run's id.", needs_interval=False),
    "run_type": RunField(
        {"type": "string", "enum": ["asset_triggered", "backfill", "manual", "scheduled"]},
        "How the run was made: scheduled, manual, backfill or asset_triggered.",
        needs_interval=False,
    ),
    "logical_date": RunField(_TIMESTAMP, "The run's logical date, ISO timestamp (UTC)."),
    "ds": RunField(_DATE, "The run's logical date, YYYY-MM-DD (Airflow's `ds`)."),
    "data_interval_start": RunField(_TIMESTAMP, "Start of the run's data interval (inclusive), ISO timestamp."),
    "data_interval_end": RunField(_TIMESTAMP, "End of the run's data interval (exclusive), ISO timestamp."),
    "data_interval_start_ds": RunField(_DATE, "The day the data interval starts, YYYY-MM-DD."),
    "data_interval_end_ds": RunField(_DATE, "The day the data interval ends (exclusive end), YYYY-MM-DD."),
    "data_interval_last_ds": RunField(
        _DATE, "The day of the interval's last instant, YYYY-MM-DD: the inclusive end date of the interval."
    ),
}


def run_values(
    *,
    run_id: str,
    run_type: str | None,
    logical_date: datetime | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
) -> dict[str, Any]:
    """Every run field's value for one run; None where the run has no logical date or interval."""
    values: dict[str, Any] = dict.fromkeys(RUN_FIELDS)
    values["run_id"] = run_id
    values["run_type"] = run_type
    if logical_date is not None:
        values["logical_date"] = _iso(logical_date)
        values["ds"] = _utc(logical_date).date().isoformat()
    if data_interval_start is not None and data_interval_end is not None:
        start, end = _utc(data_interval_start), _utc(data_interval_end)
        values["data_interval_start"] = _iso(start)
        values["data_interval_end"] = _iso(end)
        values["data_interval_start_ds"] = start.date().isoformat()
        values["data_interval_end_ds"] = end.date().isoformat()
        # an empty interval (a trigger timetable) has no instant before its end: its last day is its start
        last = end - timedelta(microseconds=1) if end > start else start
        values["data_interval_last_ds"] = last.date().isoformat()
    return values


def run_values_from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`run_values` of the run an Airflow task runs in (its template context)."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    return run_values(
        run_id=str(context.get("run_id") or getattr(dag_run, "run_id", "")),
        run_type=str(getattr(run_type, "value", run_type)) if run_type is not None else None,
        logical_date=context.get("logical_date"),
        data_interval_start=context.get("data_interval_start"),
        data_interval_end=context.get("data_interval_end"),
    )


def describe_run_fields() -> str:
    """One line per field, sorted: what the planning prompt shows (byte-stable across processes)."""
    return "\n".join(f"- run.{name} ({f.schema['type']}): {f.description}" for name, f in sorted(RUN_FIELDS.items()))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat()
