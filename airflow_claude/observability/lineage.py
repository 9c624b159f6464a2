"""OpenLineage for plan steps and model calls: one custom run facet, and the tools' datasets.

OpenLineage has no standard facet for a model call or a tool call, so every task this package
runs adds its own run facet, ``airflowClaude``, under the package's producer and schema URL
(:data:`SCHEMA_URL`, the JSON Schema shipped beside this module). A plan step's facet names the
plan (id, hash), the step, the tool (name, version), the catalog fingerprint, the idempotency
key and the try; a model-calling task's facet (the automation's ``plan`` and ``review``) names
the model and what the task spent (calls, input/output/cache token counts, cost). A tool's
declared ``inlets``/``outlets`` (Airflow ``Asset``s) become the step's input and output datasets.

Nothing here imports OpenLineage at module level: the package works without the
``openlineage`` extra, and the operators' ``get_openlineage_facets_on_*`` methods are only
called by the OpenLineage provider's listener, which is only there when the extra is.

Everything in the facet goes through :func:`~airflow_claude.observability.redaction.redact_value`
before it is built; no argument values, prompt or completion text are ever in it. Key names
avoid words Airflow's masker treats as sensitive (``token``, ``key`` as in ``api_key``...), or
it would mask harmless counts: token counts are under ``usage`` as ``input``, ``output``...
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_claude.observability.redaction import redact_value

if TYPE_CHECKING:  # pragma: no cover
    from airflow_claude.runtime.provenance import StepIdentity

log = logging.getLogger(__name__)

#: the run facet's key in an OpenLineage event's ``run.facets``
FACET_NAME = "airflowClaude"
SCHEMA_PATH = Path(__file__).with_name("lineage_facet.schema.json")
REPOSITORY_URL = "https://github.com/airflow-claude/airflow-claude"
#: ``_schemaURL`` of the facet: the schema file in this package, at a stable address
SCHEMA_URL = (
    "https://raw.githubusercontent.com/airflow-claude/airflow-claude/main/"
    "airflow_claude/observability/lineage_facet.schema.json#/$defs/AirflowClaudeRunFacet"
)
#: where this stash of lineage fields lives on an operator between ``execute`` and the listener
STASH_ATTR = "_airflow_claude_lineage"

# facet field (JSON name) -> Usage field
_USAGE_FIELDS = {
    "calls": "calls",
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheCreationInput": "cache_creation_input_tokens",
    "cacheReadInput": "cache_read_input_tokens",
    "costUsd": "cost_usd",
}


@cache
def producer() -> str:
    """The ``_producer`` of the facet: this package's repository at its installed version."""
    try:
        from importlib.metadata import version

        return f"{REPOSITORY_URL}/tree/v{version('airflow-claude')}"
    except Exception:  # not installed as a distribution (a checkout on sys.path)
        return REPOSITORY_URL


@cache
def facet_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the facet (``$defs/AirflowClaudeRunFacet``)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def lineage_active() -> bool:
    """Whether the OpenLineage provider is installed and configured to emit in this process.

    Tasks ask before doing extra work (one XCom read) that only lineage needs.
    """
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    try:
        return not conf.is_disabled()
    except Exception:  # a broken OpenLineage config must never fail a task
        return False


# ------------------------------------------------------------------ facet fields (plain data)


def step_fields(
    identity: StepIdentity,
    *,
    try_number: int | None,
    idempotency_key: str | None = None,
    args_fingerprint: str | None = None,
    automation_id: str | None = None,
    round_number: int | None = None,
) -> dict[str, Any]:
    """The facet of one plan step's task, from its identity and (when it ran) its provenance stamp."""
    return facet_payload(
        {
            "kind": "plan_step",
            "planId": identity.plan_id,
            "planHash": identity.plan_hash,
            "stepId": identity.step_id,
            "tool": identity.tool,
            "toolVersion": identity.tool_version,
            "catalogFingerprint": identity.catalog_fingerprint,
            "idempotencyKey": idempotency_key,
            "argsFingerprint": args_fingerprint,
            "tryNumber": try_number,
            "automationId": automation_id,
            "round": round_number,
        }
    )


def fields_from_provenance(stamp: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The facet of a step that ran, from the provenance record it pushed beside its output."""
    from airflow_claude.runtime.provenance import StepIdentity

    identity = StepIdentity(*(str(stamp.get(name, "")) for name in StepIdentity._fields))
    return step_fields(
        identity,
        try_number=stamp.get("try_number"),
        idempotency_key=stamp.get("idempotency_key"),
        args_fingerprint=stamp.get("args_fingerprint"),
        **extra,
    )


def model_fields(
    kind: str,
    *,
    model: str | None,
    usage: Any,
    try_number: int | None,
    plan_id: str | None = None,
    plan_hash: str | None = None,
    automation_id: str | None = None,
    round_number: int | None = None,
    catalog_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The facet of a model-calling task (``kind``: ``plan`` or ``review``): the model and its spend.

    ``usage`` is the task's :class:`~airflow_claude.automation.contracts.Usage` (or its dump):
    every try's calls counted, as the budget sees them. No prompt or completion text.
    """
    return facet_payload(
        {
            "kind": kind,
            "planId": plan_id,
            "planHash": plan_hash,
            "catalogFingerprint": catalog_fingerprint,
            "tryNumber": try_number,
            "automationId": automation_id,
            "round": round_number,
            "model": model or None,
            "usage": usage_fields(usage),
        }
    )


def usage_fields(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    data = usage.model_dump(mode="json") if hasattr(usage, "model_dump") else dict(usage)
    return {name: data[source] for name, source in _USAGE_FIELDS.items() if data.get(source) is not None}


def facet_payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty fields, then mask every registered secret, structurally, before anything is encoded."""
    kept = {k: v for k, v in fields.items() if v is not None and v != ""}
    masked: dict[str, Any] = redact_value(kept)
    return masked


def stash(task: Any, fields: Mapping[str, Any]) -> None:
    """Keep a task's facet fields on the operator, for the listener that runs after ``execute``.

    The OpenLineage listener calls ``get_openlineage_facets_on_complete`` in a fork of the task
    process, where reading XCom is not safe; it sees the operator's attributes.
    """
    try:
        object.__setattr__(task, STASH_ATTR, dict(fields))
    except Exception:  # lineage bookkeeping must never fail a task
        log.debug("could not stash lineage fields on %r", task, exc_info=True)


def stashed(task: Any) -> dict[str, Any] | None:
    value = getattr(task, STASH_ATTR, None)
    return value if isinstance(value, dict) else None


# ------------------------------------------------------------------ OpenLineage objects (lazy)


@cache
def facet_class() -> type:
    """``AirflowClaudeRunFacet``, an OpenLineage ``RunFacet`` (attrs), built on first use."""
    import attrs
    from openlineage.client.facet_v2 import RunFacet

    @attrs.define
    class AirflowClaudeRunFacet(RunFacet):  # type: ignore[misc]
        """What a task of airflow-claude did: a plan step's tool call, or a model call.

        See ``lineage_facet.schema.json`` in the package for every field.
        """

        kind: str
        planId: str | None = attrs.field(default=None)
        planHash: str | None = attrs.field(default=None)
        stepId: str | None = attrs.field(default=None)
        tool: str | None = attrs.field(default=None)
        toolVersion: str | None = attrs.field(default=None)
        catalogFingerprint: str | None = attrs.field(default=None)
        idempotencyKey: str | None = attrs.field(default=None)
        argsFingerprint: str | None = attrs.field(default=None)
        tryNumber: int | None = attrs.field(default=None)
        automationId: str | None = attrs.field(default=None)
        round: int | None = attrs.field(default=None)
        model: str | None = attrs.field(default=None)
        usage: dict[str, Any] | None = attrs.field(default=None)

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL

    AirflowClaudeRunFacet.__module__ = __name__
    globals()["AirflowClaudeRunFacet"] = AirflowClaudeRunFacet  # importable by name (pickling)
    return AirflowClaudeRunFacet


def run_facet(fields: Mapping[str, Any]) -> Any:
    """The OpenLineage run facet for ``fields`` (from :func:`step_fields` or :func:`model_fields`)."""
    cls = facet_class()
    known = {a.name for a in cls.__attrs_attrs__ if not a.name.startswith("_")}  # type: ignore[attr-defined]
    return cls(**{k: v for k, v in facet_payload(fields).items() if k in known}, producer=producer())


def asset_datasets(assets: Iterable[Any]) -> list[Any]:
    """OpenLineage datasets for Airflow ``Asset``s, in the given (sorted) order.

    The provider's converter for the asset's scheme when there is one (``file``, ``s3``,
    ``postgres``...), else ``namespace = scheme://authority`` and ``name = path`` from the URI.
    """
    from openlineage.client.event_v2 import Dataset

    datasets = []
    for asset in assets:
        dataset = None
        try:
            from airflow.providers.openlineage.utils.utils import translate_airflow_asset

            dataset = translate_airflow_asset(asset, None)
        except Exception:  # an unknown scheme or an old provider: fall back to the URI
            dataset = None
        if dataset is None:
            dataset = _dataset_from_uri(Dataset, str(asset.uri))
        datasets.append(dataset)
    return datasets


def _dataset_from_uri(dataset_cls: Any, uri: str) -> Any:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if not parts.scheme:
        return dataset_cls(namespace="airflow", name=uri)  # a name-only asset
    namespace = f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme
    name = parts.path.lstrip("/") if parts.netloc else parts.path
    return dataset_cls(namespace=namespace, name=name or uri)


def operator_lineage(fields: Mapping[str, Any] | None, inlets: Iterable[Any] = (), outlets: Iterable[Any] = ()) -> Any:
    """An ``OperatorLineage``: the facet (when there are fields) and the datasets of the tool's assets."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    refresh_provider_redactor()
    facets = {FACET_NAME: run_facet(fields)} if fields else {}
    return OperatorLineage(inputs=asset_datasets(inlets), outputs=asset_datasets(outlets), run_facets=facets)


def refresh_provider_redactor() -> None:
    """Let the provider's event redactor see every secret registered so far in this process.

    ``apache-airflow-providers-openlineage`` 2.20.3 builds its redactor once, with the listener,
    from a copy of the masker's compiled pattern (``OpenLineageRedactor.from_masker``): a secret
    registered later (by a DAG file as it is parsed, or when a task reads a connection) is
    masked in logs and XCom but not in the events, e.g. in the job's documentation facet (the
    task's ``doc_md``). Called from our ``get_openlineage_facets_on_*`` methods, which the
    listener runs just before it builds and redacts each event. Private attributes: any failure
    is ignored (our own facet is masked by :func:`facet_payload` either way).
    """
    try:
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

        if not get_openlineage_listener.cache_info().currsize:  # no listener in this process: nothing to fix
            return
        try:
            from airflow.sdk._shared.secrets_masker import _secrets_masker  # the adapter's own import
        except ImportError:  # pragma: no cover - older task SDKs
            from airflow.sdk.execution_time.secrets_masker import _secrets_masker  # type: ignore[no-redef]
        masker = _secrets_masker()
        redactor = get_openlineage_listener().adapter._redacter
        redactor.patterns = masker.patterns
        redactor.replacer = masker.replacer
    except Exception:
        log.debug("could not refresh the OpenLineage redactor", exc_info=True)


def merge_lineage(ours: Any, theirs: Any) -> Any:
    """Ours beside what an operator's own OpenLineage method found (its SQL tables, ...)."""
    if theirs is None:
        return ours
    from airflow.providers.openlineage.extractors import OperatorLineage

    def union(first: list[Any] | None, second: list[Any]) -> list[Any]:
        seen = {(d.namespace, d.name) for d in first or []}
        return list(first or []) + [d for d in second if (d.namespace, d.name) not in seen]

    return OperatorLineage(
        inputs=union(theirs.inputs, ours.inputs),
        outputs=union(theirs.outputs, ours.outputs),
        run_facets={**(theirs.run_facets or {}), **ours.run_facets},
        job_facets=dict(theirs.job_facets or {}),
    )


class LineageMixin:
    """``get_openlineage_facets_on_complete``/``_on_failure`` from what ``execute`` stashed.

    An operator using it calls :func:`stash` during ``execute``; :meth:`lineage_fields` is the
    fallback when nothing was stashed (a failure before the stash). Datasets come from
    :meth:`lineage_assets`.
    """

    def lineage_fields(self, task_instance: Any) -> dict[str, Any] | None:
        return None

    def lineage_assets(self) -> tuple[Iterable[Any], Iterable[Any]]:
        return (), ()

    def _lineage(self, task_instance: Any) -> Any:
        fields = stashed(self) or self.lineage_fields(task_instance)
        if fields is not None and fields.get("tryNumber") is None and task_instance is not None:
            fields = {**fields, "tryNumber": getattr(task_instance, "try_number", None)}
        inlets, outlets = self.lineage_assets()
        return operator_lineage(fields, inlets, outlets)

    def get_openlineage_facets_on_start(self) -> Any:
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self._lineage(task_instance)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._lineage(task_instance)
