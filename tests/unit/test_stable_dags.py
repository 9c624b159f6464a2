"""Every DAG the package builds serializes the same in two separate processes (else every parse is a
new DAG version): the example plans, an invalid plan's placeholder, and the automations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CODE = """
import hashlib, json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
docs = {d: json.dumps(DagSerialization.to_dict(g), sort_keys=True, default=str) for d, g in sorted(bag.dags.items())}
print(json.dumps({d: [hashlib.sha256(t.encode()).hexdigest(), "0x7f" in t or " at 0x" in t] for d, t in docs.items()}))
"""


def _serialized_in_a_new_process(folder: Path, home: Path) -> dict[str, list[object]]:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(folder)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_example_dags_serialize_identically_in_two_processes(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    shutil.copytree(REPO / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "plans" / "broken_plan.json").write_text(json.dumps({"schema_version": "1", "id": "broken_plan"}))
    first = _serialized_in_a_new_process(dags, tmp_path / "home")
    second = _serialized_in_a_new_process(dags, tmp_path / "home")
    examples = {"orders_assistant", "orders_nightly_review", "orders_pipeline", "nightly_orders_report"}
    assert examples | {"regional_orders_report"} <= set(first)
    assert "broken_plan" in first  # the placeholder of the invalid plan
    assert first == second
    leaking = sorted(dag_id for dag_id, (_, has_address) in first.items() if has_address)
    assert leaking == [], f"object addresses in the serialized form of {leaking}"
