"""airflow-claude: Claude proposes a plan; Airflow runs it.

The public surface is deliberately small; import from the sub-packages:

- ``airflow_claude.plan``: the plan model, loading and validation.
- ``airflow_claude.catalog``: tools and the catalog (the allow-list).
- ``airflow_claude.factory``: ``load_plan_dags``, the one entry point that compiles plans to DAGs.
"""

from __future__ import annotations

__version__ = "0.1.0"
