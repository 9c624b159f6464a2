"""The author-facing names are importable from ``airflow_claude``, lazily.

``claude_automation_group`` is asserted like every other name: this test fails until
``airflow_claude.automation`` defines it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import airflow_claude

NAMES = sorted(set(airflow_claude.__all__) - {"__version__"})


@pytest.mark.parametrize("name", NAMES)
def test_every_exported_name_resolves_to_the_object_its_package_defines(name: str) -> None:
    value = getattr(airflow_claude, name)
    home = importlib.import_module(airflow_claude._EXPORTS[name])
    assert value is getattr(home, name)


def test_all_and_the_lazy_map_agree_and_dir_lists_them() -> None:
    assert set(airflow_claude._EXPORTS) == set(NAMES)
    assert set(airflow_claude.__all__) <= set(dir(airflow_claude))
    assert airflow_claude.__version__


def test_from_import_works_and_an_unknown_name_is_an_attribute_error() -> None:
    from airflow_claude import Catalog, python_tool
    from airflow_claude.catalog import Catalog as CatalogFromSubpackage

    assert Catalog is CatalogFromSubpackage
    assert callable(python_tool)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = airflow_claude.nope  # type: ignore[attr-defined]


def test_importing_the_package_stays_cheap() -> None:
    """Airflow's provider manager imports it: no Airflow, pydantic or sub-package until a name is used."""
    code = (
        "import sys, airflow_claude, airflow_claude.get_provider_info\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'pydantic', 'anthropic', 'jsonschema')"
        " or (m.startswith('airflow_claude.') and m != 'airflow_claude.get_provider_info'))\n"
        "assert not heavy, heavy\n"
        "airflow_claude.Plan\n"
        "assert 'airflow_claude.plan' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
