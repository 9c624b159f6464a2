"""Tools: the only things a plan can call, each with a typed contract.

Two kinds, both declared by a DAG author in Python (never by a plan):

- :func:`python_tool` wraps a typed callable; its input schema comes from the signature
  (through pydantic) and its output schema from the return annotation.
- :func:`operator_tool` wraps an existing Airflow operator class; the catalog fixes the
  parameters a plan must not choose (such as ``conn_id``) and declares the ones it may fill.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal, get_type_hints

import jsonschema
from pydantic import BaseModel, ConfigDict, PydanticUserError, TypeAdapter, create_model

from airflow_claude.catalog.route import Route
from airflow_claude.errors import CatalogError

SideEffects = Literal["read_only", "mutating"]
_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


@dataclass(frozen=True)
class ToolContext:
    """What a running step tells its tool; declare a parameter typed ``ToolContext`` to receive it.

    ``idempotency_key`` is stable across Airflow retries of the same step in the same run:
    pass it to any external system that can deduplicate writes.
    """

    idempotency_key: str
    dag_id: str
    run_id: str
    step_id: str
    plan_id: str
    plan_hash: str
    try_number: int
    log: logging.Logger | Any
    airflow_context: Mapping[str, Any] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class CircuitPolicy:
    """Cut a tool off after ``failures`` failures within ``window``, for ``cool_down`` (across runs)."""

    failures: int = 5
    window: timedelta = timedelta(minutes=10)
    cool_down: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Compensation:
    """How to undo a mutating tool's effect: another catalog tool, with arguments taken from the step.

    ``args`` maps each parameter of the compensating tool to ``"args.<name>"`` (the step's
    resolved argument) or ``"output.<path>"`` (a value in the step's output).
    """

    tool: str
    args: Mapping[str, str] = field(default_factory=dict)

    def contract(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": dict(sorted(self.args.items()))}


@dataclass(frozen=True, eq=False)
class Tool:
    """A tool's contract. Compare tools by :meth:`contract`, which also feeds the catalog fingerprint."""

    name: str
    description: str
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    side_effects: SideEffects
    max_retries: int = 3
    default_retries: int = 0
    max_timeout_seconds: float | None = None
    compensation: Compensation | None = None
    circuit: CircuitPolicy | None = field(default_factory=CircuitPolicy)  # None: never cut off
    pool: str | None = None  # an Airflow pool bounding this tool's concurrent calls (create it first)
    #: the Airflow queue and executor its steps (and undos) run on; deployment, not contract
    queue: str | None = None
    executor: str | None = None
    #: Airflow ``Asset``s the tool reads and writes: the step's lineage datasets and its task's inlets/outlets
    inlets: tuple[Any, ...] = ()
    outlets: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        import re

        object.__setattr__(self, "inlets", _assets(self.name, "inlets", self.inlets))
        object.__setattr__(self, "outlets", _assets(self.name, "outlets", self.outlets))

        if not re.match(_NAME_PATTERN, self.name):
            raise CatalogError(f"tool name {self.name!r} must match {_NAME_PATTERN}")
        self.route.check(self.name)
        if not self.description.strip():
            raise CatalogError(f"tool {self.name!r} needs a description: Claude chooses tools by it")
        if self.side_effects not in ("read_only", "mutating"):
            raise CatalogError(f"tool {self.name!r}: side_effects must be 'read_only' or 'mutating'")
        if self.compensation is not None and self.side_effects != "mutating":
            raise CatalogError(f"tool {self.name!r}: only a mutating tool has something to compensate")
        if not 0 <= self.default_retries <= self.max_retries:
            raise CatalogError(f"tool {self.name!r}: need 0 <= default_retries <= max_retries")
        try:
            jsonschema.Draft202012Validator.check_schema(self.input_schema)
            if self.output_schema is not None:
                jsonschema.Draft202012Validator.check_schema(self.output_schema)
        except jsonschema.SchemaError as exc:
            raise CatalogError(f"tool {self.name!r} has an invalid JSON Schema: {exc.message}") from exc

    @property
    def kind(self) -> str:
        return "tool"

    @property
    def route(self) -> Route:
        """Where this tool's tasks run (left out of :meth:`contract`: moving a tool keeps its plans valid)."""
        return Route(self.queue, self.executor)

    @cached_property
    def input_validator(self) -> jsonschema.Draft202012Validator:
        """Compiled once per tool: validation of a 1,000-step plan must stay fast."""
        return jsonschema.Draft202012Validator(self.input_schema)

    @cached_property
    def _partial_validators(self) -> dict[frozenset[str], jsonschema.Draft202012Validator]:
        return {}

    def input_validator_without(self, optional: frozenset[str]) -> jsonschema.Draft202012Validator:
        """A validator for which the ``optional`` arguments may be absent (they hold references)."""
        cache = self._partial_validators
        if optional not in cache:
            schema = dict(self.input_schema)
            schema["required"] = [name for name in schema.get("required", []) if name not in optional]
            cache[optional] = jsonschema.Draft202012Validator(schema)
        return cache[optional]

    @cached_property
    def _fast_checks(self) -> dict[frozenset[str], Callable[[Any], bool] | None]:
        return {}

    def input_fast_check(self, optional: frozenset[str] = frozenset()) -> Callable[[Any], bool] | None:
        """A compiled predicate, True only for arguments the matching validator accepts; None: use jsonschema.

        Same schema as :meth:`input_validator_without`; False means "ask the validator", not "invalid".
        """
        cache = self._fast_checks
        if optional not in cache:
            from airflow_claude.plan.fastcheck import compile_valid_check  # plan imports catalog: import late

            schema = dict(self.input_schema)
            schema["required"] = [name for name in schema.get("required", []) if name not in optional]
            cache[optional] = compile_valid_check(schema)
        return cache[optional]

    @cached_property
    def schema_facts(self) -> dict[Any, Any]:
        """Facts the validator derives from this tool's schemas, memoised with the tool.

        A plans folder asks the same few questions of each tool thousands of times; a tool's
        schemas never change, and the memo goes away with the tool.
        """
        return {}

    @cached_property
    def output_validator(self) -> jsonschema.Draft202012Validator | None:
        return jsonschema.Draft202012Validator(self.output_schema) if self.output_schema else None

    def contract(self) -> dict[str, Any]:
        """Everything a plan depends on; a change here changes the catalog fingerprint."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "version": self.version,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "side_effects": self.side_effects,
            "max_retries": self.max_retries,
            "default_retries": self.default_retries,
            "max_timeout_seconds": self.max_timeout_seconds,
            "compensation": self.compensation.contract() if self.compensation else None,
            # only when declared: the fingerprint of a catalog without datasets stays what it was
            **({"inlets": [a.uri for a in self.inlets]} if self.inlets else {}),
            **({"outlets": [a.uri for a in self.outlets]} if self.outlets else {}),
        }

    def referenceable_params(self) -> frozenset[str] | None:
        """Parameters that may hold a ``$ref``; None means all of them."""
        return None


@dataclass(frozen=True, eq=False)
class PythonTool(Tool):
    """A tool backed by a typed Python callable.

    Calling the tool calls the function itself, with the function's own signature (no JSON
    coercion): ``@python_tool`` keeps the decorated name a function a unit test can call. Its
    name, docstring, signature and ``__wrapped__`` are the function's.
    """

    func: Callable[..., Any] | None = None
    context_param: str | None = None
    args_model: type[BaseModel] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.func is not None:
            # functools.update_wrapper, but through object.__setattr__ (the dataclass is frozen) and
            # without merging the function's __dict__, which could shadow the tool's own fields.
            for attr in functools.WRAPPER_ASSIGNMENTS:
                if hasattr(self.func, attr):
                    object.__setattr__(self, attr, getattr(self.func, attr))
            object.__setattr__(self, "__wrapped__", self.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as if it were not a tool (for tests and plain Python callers)."""
        if self.func is None:
            raise TypeError(f"tool {self.name!r} has no function to call")
        return self.func(*args, **kwargs)

    def call(self, args: Mapping[str, Any], context: ToolContext | None = None) -> Any:
        """Coerce validated JSON arguments into the signature's types (models, dates...) and call."""
        assert self.func is not None and self.args_model is not None
        parsed = self.args_model.model_validate(dict(args))
        kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        if self.context_param:
            kwargs[self.context_param] = context
        return self.func(**kwargs)

    @property
    def kind(self) -> str:
        return "python"

    def contract(self) -> dict[str, Any]:
        func = self.func
        return {**super().contract(), "callable": f"{func.__module__}.{func.__qualname__}" if func else None}


@dataclass(frozen=True, eq=False)
class OperatorTool(Tool):
    """A tool backed by an Airflow operator class; the plan fills only the declared parameters."""

    operator_class: type | None = None
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "operator"

    def contract(self) -> dict[str, Any]:
        cls = self.operator_class
        return {
            **super().contract(),
            "operator": f"{cls.__module__}.{cls.__qualname__}" if cls else None,
            "fixed": dict(sorted(self.fixed.items())),
        }

    def referenceable_params(self) -> frozenset[str] | None:
        """References resolve when the operator renders its template fields, so only those."""
        return self._template_fields

    @cached_property
    def _template_fields(self) -> frozenset[str]:
        return frozenset(getattr(self.operator_class, "template_fields", ()))


def python_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    version: str = "1",
    side_effects: SideEffects = "read_only",
    max_retries: int = 3,
    default_retries: int = 0,
    max_timeout_seconds: float | None = None,
    compensation: Compensation | None = None,
    circuit: CircuitPolicy | None = CircuitPolicy(),
    pool: str | None = None,
    queue: str | None = None,
    executor: str | None = None,
    inlets: Sequence[Any] = (),
    outlets: Sequence[Any] = (),
) -> Any:
    """Make a :class:`PythonTool` from a typed function; usable as ``@python_tool`` or ``@python_tool(...)``.

    The description defaults to the docstring. A parameter annotated :class:`ToolContext` is
    filled by the runtime and is not part of the input schema. The result is still callable
    like the function (``query_orders(start, end)``), so a tool is unit-tested as a function.
    ``inlets``/``outlets``: the Airflow ``Asset``s the tool reads and writes (docs/lineage.md).
    ``queue``/``executor``: where its steps and undos run (docs/deployment.md), e.g. workers that
    reach the warehouse; not part of the contract, so moving a tool keeps its plans valid.
    """

    def build(fn: Callable[..., Any]) -> PythonTool:
        try:
            hints = get_type_hints(fn)
        except (NameError, TypeError) as exc:
            raise CatalogError(f"tool {fn.__name__!r}: cannot read its type hints: {exc}") from exc
        signature = inspect.signature(fn)
        fields: dict[str, Any] = {}
        context_param = None
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise CatalogError(f"tool {fn.__name__!r}: *args/**kwargs cannot be described to Claude")
            annotation = hints.get(param.name)
            if annotation is ToolContext:
                context_param = param.name
                continue
            if annotation is None:
                raise CatalogError(f"tool {fn.__name__!r}: parameter {param.name!r} needs a type hint")
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        returns = hints.get("return", Any)
        try:
            args_model = create_model(  # type: ignore[call-overload]
                f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields
            )
            input_schema = args_model.model_json_schema()
            input_schema.pop("title", None)
            output_schema: dict[str, Any] | None = None  # unannotated: the output is not described
            if returns in (None, type(None)):
                output_schema = {"type": "null"}  # returns nothing: no reference can point into it
            elif returns is not Any:
                output_schema = TypeAdapter(returns).json_schema()
        except PydanticUserError as exc:
            raise CatalogError(f"tool {fn.__name__!r}: cannot derive a JSON Schema: {exc}") from exc
        return PythonTool(
            name=name or fn.__name__,
            description=(description or inspect.getdoc(fn) or "").strip(),
            version=version,
            input_schema=input_schema,
            output_schema=output_schema,
            side_effects=side_effects,
            max_retries=max_retries,
            default_retries=default_retries,
            max_timeout_seconds=max_timeout_seconds,
            compensation=compensation,
            circuit=circuit,
            pool=pool,
            queue=queue,
            executor=executor,
            inlets=_as_tuple(inlets),
            outlets=_as_tuple(outlets),
            func=fn,
            context_param=context_param,
            args_model=args_model,
        )

    return build(func) if func is not None else build


def operator_tool(
    operator_class: type,
    *,
    name: str,
    description: str,
    params: Mapping[str, dict[str, Any]],
    required: tuple[str, ...] | None = None,
    fixed: Mapping[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    version: str = "1",
    side_effects: SideEffects = "mutating",
    max_retries: int = 3,
    default_retries: int = 0,
    max_timeout_seconds: float | None = None,
    compensation: Compensation | None = None,
    circuit: CircuitPolicy | None = CircuitPolicy(),
    pool: str | None = None,
    queue: str | None = None,
    executor: str | None = None,
    inlets: Sequence[Any] = (),
    outlets: Sequence[Any] = (),
) -> OperatorTool:
    """Wrap an operator class as a tool.

    ``params`` maps each parameter the plan may fill to its JSON Schema; ``fixed`` holds the
    constructor arguments the catalog decides (connection ids, pools...). A parameter cannot
    be both, and each must be accepted by the operator's constructor. ``inlets``/``outlets``:
    the Airflow ``Asset``s the tool reads and writes (docs/lineage.md). ``queue``/``executor``: where
    its steps and undos run (docs/deployment.md); not part of the contract. Both are refused in
    ``fixed``: routing is the tool's, never an operator argument a catalog could set twice.
    """
    fixed = dict(fixed or {})
    routed = sorted({"queue", "executor"} & (set(params) | set(fixed)))
    if routed:
        raise CatalogError(f"tool {name!r}: set {routed} on the tool (operator_tool(..., queue=...)), not as params")
    overlap = sorted(set(params) & set(fixed))
    if overlap:
        raise CatalogError(f"tool {name!r}: {overlap} are both fixed and plan-filled")
    accepted = _constructor_params(operator_class)
    unknown = sorted((set(params) | set(fixed)) - accepted - {"task_id"})
    if unknown:
        raise CatalogError(f"tool {name!r}: {operator_class.__name__} does not accept {unknown}")
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {key: dict(schema) for key, schema in sorted(params.items())},
        "required": sorted(required if required is not None else params),
        "additionalProperties": False,
    }
    return OperatorTool(
        name=name,
        description=description,
        version=version,
        input_schema=input_schema,
        output_schema=output_schema,
        side_effects=side_effects,
        max_retries=max_retries,
        default_retries=default_retries,
        max_timeout_seconds=max_timeout_seconds,
        compensation=compensation,
        circuit=circuit,
        pool=pool,
        queue=queue,
        executor=executor,
        inlets=_as_tuple(inlets),
        outlets=_as_tuple(outlets),
        operator_class=operator_class,
        fixed=fixed,
    )


def _as_tuple(values: Any) -> tuple[Any, ...]:
    """One asset or a collection of them, as a tuple (checked by the tool)."""
    if isinstance(values, list | tuple | set | frozenset):
        return tuple(values)
    return (values,) if values else ()


def _assets(tool: str, what: str, values: Any) -> tuple[Any, ...]:
    """A tool's declared Airflow ``Asset``s, sorted by URI (then name) so compiled DAGs stay deterministic."""
    if not values:
        return ()
    from airflow.sdk import Asset  # only a tool that declares datasets pays for the import

    values = _as_tuple(values)
    wrong = [v for v in values if not isinstance(v, Asset)]
    if wrong:
        raise CatalogError(f"tool {tool!r}: {what} must be airflow.sdk.Asset objects, not {wrong[0]!r}")
    unique = {(a.uri, a.name): a for a in values}
    return tuple(unique[key] for key in sorted(unique))


def _constructor_params(cls: type) -> set[str]:
    """All keyword names an operator accepts, walking the MRO (operators pass **kwargs up)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL) and param.name != "self":
                names.add(param.name)
    return names
