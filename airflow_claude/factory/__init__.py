"""The DAG factory: ``load_plan_dags`` compiles a folder of plan files into Airflow DAGs."""

from airflow_claude.factory.build import load_plan_dags

__all__ = ["load_plan_dags"]
