"""The airflow-claude plugin: run pages, JSON API, export and replay (see ``plugin.py``)."""
