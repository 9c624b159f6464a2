"""Provider metadata read by Airflow's providers manager (``airflow providers list``)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Describe the provider; ``package-name`` must equal the distribution name."""
    from airflow_claude import __version__

    return {
        "package-name": "airflow-claude",
        "name": "Claude plans",
        "description": "Claude proposes a plan; Airflow runs it as a validated, auditable task graph.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Claude plans",
                "external-doc-url": "https://github.com/airflow-claude/airflow-claude",
                "tags": ["ai"],
            }
        ],
        "operators": [
            {
                "integration-name": "Claude plans",
                "python-modules": [
                    "airflow_claude.automation.approval",
                    "airflow_claude.automation.commit",
                    "airflow_claude.automation.planning",
                    "airflow_claude.automation.report",
                    "airflow_claude.automation.review",
                    "airflow_claude.automation.routes",
                    "airflow_claude.automation.saga",
                    "airflow_claude.automation.steps",
                    "airflow_claude.runtime.compensate",
                    "airflow_claude.runtime.invalid",
                    "airflow_claude.runtime.step",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Claude plans",
                "python-modules": ["airflow_claude.automation.waiting"],
            }
        ],
    }
