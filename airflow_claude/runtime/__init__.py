"""The step runtime: operators and helpers that run plan steps inside Airflow task instances."""
