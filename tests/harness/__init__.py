"""Development harness: a real, multi-process Airflow for end-to-end tests, fault tests and the demo.

Not shipped in the wheel (``airflow_claude.testing`` keeps only the offline Claude for users).
Import ``tests.harness.airflow_instance`` with the checkout root on ``sys.path``; pytest puts it
there (``pythonpath`` in ``pyproject.toml``), ``scripts/demo.py`` does it itself.
"""
