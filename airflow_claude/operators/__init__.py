"""Operators for DAG authors."""

__all__: list[str] = []
