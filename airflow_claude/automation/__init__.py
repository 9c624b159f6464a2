"""Plan, approve, act and review inside one DAG run: automations triggered from the UI or a schedule.

``claude_automation_group`` puts an automation between tasks of your own DAG;
``claude_automation`` builds a whole DAG around one.
"""

from airflow_claude.automation.contracts import Report
from airflow_claude.automation.dag import claude_automation
from airflow_claude.automation.group import AutomationGroup, claude_automation_group
from airflow_claude.automation.memory import memory_key
from airflow_claude.automation.settings import AutomationSettings

__all__ = [
    "AutomationGroup",
    "AutomationSettings",
    "Report",
    "claude_automation",
    "claude_automation_group",
    "memory_key",
]
