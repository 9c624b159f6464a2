"""Fixtures over the shared helpers in ``shop.py`` (import helpers from ``shop``, never from ``conftest``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from shop import CATALOG, PlanDict, Step, build_plan, build_step, diamond

from airflow_claude.catalog import Catalog


@pytest.fixture
def catalog() -> Catalog:
    return CATALOG


@pytest.fixture
def step() -> Callable[..., Step]:
    return build_step


@pytest.fixture
def make_plan() -> Callable[..., PlanDict]:
    return build_plan


@pytest.fixture
def diamond_plan() -> PlanDict:
    return diamond()


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[..., Path]:
    """Write a plan dict (or raw text/bytes) to ``<dir>/<name>.json``; name defaults to the plan id."""

    def write(data: Any, name: str | None = None, directory: Path | None = None) -> Path:
        folder = directory or tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        if name is None:
            name = data["id"] if isinstance(data, dict) else "plan"
        path = folder / f"{name}.json"
        if isinstance(data, bytes):
            path.write_bytes(data)
        elif isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    return write
