"""Fault-injection suite: a real Airflow on PostgreSQL, faults injected, side effects counted."""
