"""Pytest fixtures for the offline Claude.

Register from the root ``conftest.py`` with
``pytest_plugins = ["airflow_claude.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .fake_claude import FakeClaude

if TYPE_CHECKING:
    import anthropic

__all__ = ["fake_claude", "fake_claude_client", "fake_claude_env"]


@pytest.fixture
def fake_claude() -> Iterator[FakeClaude]:
    """A started ``FakeClaude`` on an ephemeral port, stopped after the test."""
    server = FakeClaude().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_claude_client(fake_claude: FakeClaude) -> Iterator[Callable[..., anthropic.Anthropic]]:
    """Factory for real SDK clients aimed at the fake; ``max_retries`` defaults to 0.

    Clients are closed at teardown so no connection outlives the server.
    """
    made: list[anthropic.Anthropic] = []

    def make(*, max_retries: int = 0, timeout: float = 10.0, **kwargs: Any) -> anthropic.Anthropic:
        client = fake_claude.client(max_retries=max_retries, timeout=timeout, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def fake_claude_env(fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch) -> FakeClaude:
    """Also point ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY`` at the fake, for code that reads env."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_claude.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    return fake_claude
