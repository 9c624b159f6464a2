"""The single task of an invalid plan's placeholder DAG: it explains, and refuses to run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class InvalidPlanOperator(BaseOperator):
    """Fails at once with the plan's validation errors; nothing from an invalid plan runs."""

    template_fields: Sequence[str] = ()
    ui_color = "#f8d7da"

    def __init__(self, *, problems: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def execute(self, context: Any) -> None:
        raise AirflowFailException(f"this plan is invalid and cannot run:\n{self.problems}")
