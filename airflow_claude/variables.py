"""Airflow Variables through the Task SDK: where state shared by every worker on every host lives.

The circuit breaker and the plan cache keep their entries here (the metadata database); inside a
task the Task SDK goes through the Execution API, elsewhere through the secrets backends.
"""

from __future__ import annotations

from typing import Protocol


class VariableStore(Protocol):
    """What a Variable user needs: the Task SDK's ``Variable`` by default, a dict-backed fake in tests."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, description: str) -> None: ...


class TaskSdkVariables:
    """Airflow Variables through the Task SDK, as text."""

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str, description: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, value, description=description)
