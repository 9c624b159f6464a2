"""The base of an automation's operators: its automation by id, and typed reads of its siblings' XCom."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from airflow.sdk import BaseOperator
from pydantic import BaseModel

from airflow_claude.automation.automation import Automation, automation_named
from airflow_claude.automation.contracts import RETURN_KEY, pull

M = TypeVar("M", bound=BaseModel)


class AutomationTask(BaseOperator):
    """Nothing here is a template field: plan content and model output are never rendered."""

    template_fields: Sequence[str] = ()

    def __init__(self, *, automation_id: str, round_number: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.automation_id = automation_id
        self.round_number = round_number

    @property
    def automation(self) -> Automation:
        return automation_named(self.automation_id)

    def pull(
        self,
        context: Any,
        model: type[M],
        name: str,
        key: str = RETURN_KEY,
        round_number: int | None = None,
        map_index: int | None = None,
    ) -> M | None:
        """Payload ``model`` pushed by this automation's task ``name`` in ``round_number`` (default: this round)."""
        task_id = self.automation.task(name, round_number if round_number is not None else self.round_number)
        return pull(context["ti"], model, task_id, key=key, map_index=map_index)
