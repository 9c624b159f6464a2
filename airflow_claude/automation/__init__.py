"""Plan, approve, act and review inside one DAG run: automations triggered from the UI or a schedule."""

from airflow_claude.automation.dag import claude_automation
from airflow_claude.automation.memory import memory_key
from airflow_claude.automation.settings import AutomationSettings

__all__ = ["AutomationSettings", "claude_automation", "memory_key"]
