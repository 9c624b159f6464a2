"""A content-addressed store of validated plans: same inputs, same plan, zero model calls.

The key is the hash of everything that shapes a plan: the goal, the catalog fingerprint, the
prompt template hash, the model and the planning options. Each entry also keeps the key's
material, and a hit is taken only when it matches exactly, so an entry never leaks to a
near-miss (same goal, different catalog), even if a file was copied or tampered with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.fingerprint import canonical_json, sha256_of
from airflow_claude.plan.limits import PlanLimits
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan


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


class PlanCache:
    """Plans stored as ``<root>/<sha256>.json``; ``root`` is a local folder or an ``ObjectStoragePath``."""

    def __init__(self, root: str | Path | Any) -> None:
        if isinstance(root, str) and "://" in root:
            from airflow.sdk import ObjectStoragePath

            root = ObjectStoragePath(root)
        elif isinstance(root, str):
            root = Path(root)
        self.root = root

    def _entry(self, material: dict[str, Any]) -> Any:
        return self.root / f"{sha256_of(material).removeprefix('sha256:')}.json"

    def get(self, material: dict[str, Any], catalog: Catalog, limits: PlanLimits) -> Plan | None:
        """The stored plan for exactly this material, re-validated against today's catalog; else None."""
        entry = self._entry(material)
        if not entry.exists():
            return None
        try:
            stored = json.loads(entry.read_text())
        except (OSError, ValueError):
            return None
        if canonical_json(stored.get("key_material")) != canonical_json(material):
            return None
        result = validate_plan(stored.get("plan"), catalog, limits=limits)
        return result.plan if result.ok else None

    def put(self, material: dict[str, Any], plan: Plan) -> None:
        entry = self._entry(material)
        if isinstance(self.root, Path):
            self.root.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"key_material": material, "plan": plan.model_dump(mode="json")}, sort_keys=True)
        if isinstance(entry, Path):
            scratch = entry.with_suffix(".tmp")
            scratch.write_text(payload)
            scratch.replace(entry)  # readers never see half an entry
        else:
            entry.write_text(payload)
