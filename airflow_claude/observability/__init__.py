"""Structured records and redaction: what every plan, model call and step logs."""

from airflow_claude.observability.records import emit
from airflow_claude.observability.redaction import redact_value

__all__ = ["emit", "redact_value"]
