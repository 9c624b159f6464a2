"""One base class for the package's errors: ``except AirflowClaudeError`` catches whatever it raises."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import airflow_claude
from airflow_claude.errors import AirflowClaudeError, CatalogError, PlanValidationError, StepError
from airflow_claude.plan.refs import RefSyntaxError
from airflow_claude.planner.errors import PlanningError
from airflow_claude.runtime.circuit import CircuitOpen


def _package_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(airflow_claude.__path__, "airflow_claude.")]


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined (not just imported) by a module of the package."""
    found: list[type[BaseException]] = []
    for name in _package_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == name:
                found.append(obj)
    return found


def test_every_exception_class_of_the_package_derives_from_the_base() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15  # the walk did find them: PlanValidationError, the planner's errors, ...
    outliers = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, AirflowClaudeError))
    assert outliers == []


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (PlanValidationError, ValueError),
        (CatalogError, ValueError),
        (RefSyntaxError, ValueError),
        (StepError, RuntimeError),
        (PlanningError, RuntimeError),
        (CircuitOpen, RuntimeError),
    ],
)
def test_each_keeps_its_builtin_base_so_existing_excepts_still_match(
    error: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error, builtin)
    assert issubclass(error, AirflowClaudeError)


def test_one_except_clause_catches_a_validation_error() -> None:
    with pytest.raises(AirflowClaudeError):
        raise PlanValidationError(issues=[])
