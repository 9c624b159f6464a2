"""Make the fake-Claude fixtures available here (pytest_plugins is only allowed in the root conftest)."""

from airflow_claude.testing.pytest_plugin import (  # noqa: F401
    fake_claude,
    fake_claude_client,
    fake_claude_env,
)
