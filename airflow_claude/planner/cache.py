"""A content-addressed store of validated plans: same inputs, same plan, zero model calls.

The key is the hash of everything that shapes a plan: the goal, the catalog fingerprint, the
prompt template hash, the model and the planning options. Each entry also keeps the key's
material, and a hit is taken only when it matches exactly, so an entry never leaks to a
near-miss (same goal, different catalog), even if an entry was copied or tampered with.

Where entries live decides who shares them. ``"airflow-variables"`` keeps each entry in an
Airflow Variable (the metadata database, read and written through the Task SDK), so every
worker on every host sees the same cache with nothing else to run; an object-storage URL does
the same for larger plans; a local folder is seen only by the processes of one host.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.fingerprint import canonical_json, sha256_of
from airflow_claude.plan.limits import PlanLimits
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan
from airflow_claude.variables import TaskSdkVariables, VariableStore

#: ``plan_cache="airflow-variables"``: one Airflow Variable per entry, shared by every worker.
VARIABLES = "airflow-variables"
#: Variable keys are ``airflow_claude_plan__<sha256 hex>`` (85 characters; Airflow allows 250).
VARIABLE_PREFIX = "airflow_claude_plan__"

log = logging.getLogger(__name__)


def cache_key_material(
    *, goal: str, catalog: Catalog, template_hash: str, model: str, options: dict[str, Any]
) -> dict[str, Any]:
    return {
        "goal": goal,
        "catalog_fingerprint": catalog.fingerprint,
        "prompt_template_hash": template_hash,
        "model": model,
        "options": options,
    }


class _VariableEntries:
    def __init__(self, store: VariableStore | None) -> None:
        self.store: VariableStore = store if store is not None else TaskSdkVariables()

    def read(self, digest: str) -> str | None:
        return self.store.get(VARIABLE_PREFIX + digest)

    def write(self, digest: str, text: str, plan: Plan) -> None:
        description = f"airflow-claude plan cache: plan {plan.id} ({plan.hash}); delete to make the next run plan again"
        self.store.set(VARIABLE_PREFIX + digest, text, description)


class _PathEntries:
    def __init__(self, root: Path | Any) -> None:
        self.root = root

    def read(self, digest: str) -> str | None:
        entry = self.root / f"{digest}.json"
        return str(entry.read_text()) if entry.exists() else None

    def write(self, digest: str, text: str, plan: Plan) -> None:
        entry = self.root / f"{digest}.json"
        if isinstance(self.root, Path):
            self.root.mkdir(parents=True, exist_ok=True)
            scratch = entry.with_suffix(".tmp")
            scratch.write_text(text)
            scratch.replace(entry)  # readers never see half an entry
        else:
            entry.write_text(text)


class PlanCache:
    """Validated plans by key, in Airflow Variables, a local folder or object storage.

    ``root`` is :data:`VARIABLES` (``"airflow-variables"``: one Variable
    ``airflow_claude_plan__<sha256>`` per entry, in the metadata database), an object-storage URL
    (``s3://bucket/plans``) or ``ObjectStoragePath``, or a local folder (``<root>/<sha256>.json``;
    one host only). ``store`` replaces the Task SDK's Variables (anything with ``get``/``set``).
    An entry that cannot be read is a miss; an entry that cannot be written is logged, never
    raised: the plan was already made and paid for, and the next run plans again.
    """

    def __init__(self, root: str | Path | Any, store: VariableStore | None = None) -> None:
        self.root: Path | Any | None
        self._entries: _VariableEntries | _PathEntries
        if root == VARIABLES:
            self.root = None
            self._entries = _VariableEntries(store)
            return
        if isinstance(root, str) and "://" in root:
            from airflow.sdk import ObjectStoragePath

            root = ObjectStoragePath(root)
        elif isinstance(root, str):
            root = Path(root)
        self.root = root
        self._entries = _PathEntries(root)

    @staticmethod
    def _digest(material: dict[str, Any]) -> str:
        return sha256_of(material).removeprefix("sha256:")

    def get(self, material: dict[str, Any], catalog: Catalog, limits: PlanLimits) -> Plan | None:
        """The stored plan for exactly this material, re-validated against today's catalog; else None."""
        try:
            text = self._entries.read(self._digest(material))
            stored = json.loads(text) if text else None
        except Exception:  # an unreadable store or entry is a miss: plan again
            log.warning("plan cache: entry unreadable; planning again", exc_info=True)
            return None
        if not isinstance(stored, dict) or canonical_json(stored.get("key_material")) != canonical_json(material):
            return None
        result = validate_plan(stored.get("plan"), catalog, limits=limits)
        return result.plan if result.ok else None

    def put(self, material: dict[str, Any], plan: Plan) -> None:
        payload = json.dumps({"key_material": material, "plan": plan.model_dump(mode="json")}, sort_keys=True)
        try:
            self._entries.write(self._digest(material), payload, plan)
        except Exception:  # the plan is made and paid for; a lost entry costs the next run one planning call
            log.warning("plan cache: cannot store plan %s; the next run plans again", plan.id, exc_info=True)
