"""Check a plan against the catalog and the limits before anything compiles or runs.

Every problem is reported at once, each with the plan, step, JSON path, a stable code and a
hint. The checks run on the raw document, so a schema error in one step does not hide a
cycle or an unknown tool in another.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jsonschema
from pydantic import ValidationError

from airflow_claude.catalog.tool import OperatorTool, Tool
from airflow_claude.errors import Code, PlanIssue, PlanValidationError, choices_hint, did_you_mean
from airflow_claude.fingerprint import canonical_json, digest_of
from airflow_claude.plan import graph
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.model import ID_PATTERN, SCHEMA_VERSION, Plan, Provenance, Step
from airflow_claude.plan.params import param_issues, param_schema
from airflow_claude.plan.refs import REF_KEY, Ref, RefSyntaxError, contains_ref, iter_refs, parse_ref, schema_at
from airflow_claude.plan.run_fields import RUN_FIELDS

if TYPE_CHECKING:
    from airflow_claude.catalog.catalog import Catalog

# Tuples, not ``dict | list``: isinstance is faster with a tuple, and these run for every argument.
_CONTAINER = (dict, list)
_NUMBER = (int, float)
_PRESETS = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
_FIELDS = {
    "plan": set(Plan.model_fields),
    "step": set(Step.model_fields),
    "provenance": set(Provenance.model_fields),
}
_ID_KEYS = {"id"}
_RUN_TYPES = {name: frozenset({field.schema["type"]}) for name, field in RUN_FIELDS.items()}
_TYPE_ERRORS = {
    "string_type",
    "int_type",
    "int_parsing",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "list_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "datetime_type",
    "datetime_parsing",
    "int_from_float",
}


@dataclass
class ValidationResult:
    """The validated plan (None when anything is wrong) and every issue found."""

    plan: Plan | None
    issues: list[PlanIssue] = field(default_factory=list)
    #: ``plan.hash``, computed while validating (the size check encodes the whole plan anyway)
    plan_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None and not self.issues

    def raise_for_issues(self) -> Plan:
        """Return the plan, or raise :class:`PlanValidationError` listing every issue."""
        if self.plan is None or self.issues:
            raise PlanValidationError(list(self.issues))
        return self.plan


def parse_plan(data: Any, catalog: Catalog, *, limits: PlanLimits = DEFAULT_LIMITS, file: str | None = None) -> Plan:
    """Validate and return a :class:`Plan`, or raise :class:`PlanValidationError`."""
    return validate_plan(data, catalog, limits=limits, file=file).raise_for_issues()


def validate_plan(
    data: Any, catalog: Catalog, *, limits: PlanLimits = DEFAULT_LIMITS, file: str | None = None
) -> ValidationResult:
    """Run every check on a parsed JSON document and collect all issues."""
    checker = _Checker(catalog, limits, file, data)
    plan = checker.run()
    return ValidationResult(plan, checker.issues, checker.plan_hash if plan is not None else None)


class _Checker:
    def __init__(self, catalog: Catalog, limits: PlanLimits, file: str | None, data: Any) -> None:
        self.catalog = catalog
        self.limits = limits
        self.file = file
        self.data = data
        self.plan_id = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
        self.issues: list[PlanIssue] = []
        self.plan_hash: str | None = None
        self._bits: dict[str, int] = {}

    def add(
        self, code: str, message: str, *, step_id: str | None = None, path: str = "$", hint: str | None = None
    ) -> None:
        self.issues.append(PlanIssue(code, message, self.file, self.plan_id, step_id, path, hint))

    # -- entry ---------------------------------------------------------------------------------
    def run(self) -> Plan | None:
        data = self.data
        if not isinstance(data, dict):
            self.add(Code.NOT_AN_OBJECT, f"a plan is a JSON object, got {_json_type(data)}")
            return None
        if data.get("schema_version") not in (None, SCHEMA_VERSION):
            self.add(
                Code.UNSUPPORTED_SCHEMA_VERSION,
                f"schema_version {data.get('schema_version')!r} is not supported",
                path="$.schema_version",
                hint=f"this version of airflow-claude reads schema_version '{SCHEMA_VERSION}'",
            )
            return None
        steps = data.get("steps")
        if isinstance(steps, list) and len(steps) > self.limits.max_steps:
            self.add(
                Code.TOO_MANY_STEPS,
                f"the plan has {len(steps)} steps, over the limit of {self.limits.max_steps}",
                path="$.steps",
                hint="split the goal into several plans or raise PlanLimits.max_steps",
            )
            return None
        plan = self._check_model(data)
        for issue in param_issues(data.get("params"), scheduled=isinstance(data.get("schedule"), str)):
            self.add(issue.code, issue.message, path=issue.path, hint=issue.hint)
        if isinstance(steps, list):
            self._check_steps(steps, plan)
        self._check_schedule(data.get("schedule"))
        return plan if not self.issues else None

    # -- schema --------------------------------------------------------------------------------
    def _check_model(self, data: dict[str, Any]) -> Plan | None:
        try:
            return Plan.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self._pydantic_issue(error)
            return None

    def _pydantic_issue(self, error: Any) -> None:
        loc = tuple(error["loc"])
        kind = error["type"]
        step_id = self._step_id_at(loc)
        path = _json_path(loc)
        if kind == "extra_forbidden":
            owner = "step" if loc[:1] == ("steps",) and len(loc) == 3 else "plan"
            owner = "provenance" if loc[:1] == ("provenance",) else owner
            key = str(loc[-1])
            hint = did_you_mean(key, _FIELDS[owner]) or choices_hint(sorted(_FIELDS[owner]))
            self.add(Code.UNKNOWN_FIELD, f"unknown field '{key}' in the {owner}", step_id=step_id, path=path, hint=hint)
        elif kind == "missing":
            self.add(Code.MISSING_FIELD, f"required field '{loc[-1]}' is missing", step_id=step_id, path=path)
        elif kind == "too_short" and loc == ("steps",):
            self.add(Code.EMPTY_PLAN, "the plan has no steps", path=path, hint="a plan needs at least one step")
        elif kind == "string_pattern_mismatch" and loc[-1] in _ID_KEYS:
            self.add(
                Code.INVALID_ID,
                f"{error['input']!r} is not a valid id",
                step_id=step_id,
                path=path,
                hint=f"ids must match {ID_PATTERN}: ASCII letters, digits, '_' and '-', no dots or spaces",
            )
        elif kind in _TYPE_ERRORS:
            self.add(
                Code.WRONG_TYPE, f"{error['msg']} (got {_json_type(error.get('input'))})", step_id=step_id, path=path
            )
        else:
            self.add(Code.INVALID_VALUE, str(error["msg"]), step_id=step_id, path=path)

    def _step_id_at(self, loc: tuple[Any, ...]) -> str | None:
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            steps = self.data.get("steps")
            if isinstance(steps, list) and loc[1] < len(steps) and isinstance(steps[loc[1]], dict):
                sid = steps[loc[1]].get("id")
                return sid if isinstance(sid, str) else None
        return None

    # -- steps ---------------------------------------------------------------------------------
    def _check_steps(self, raw_steps: list[Any], plan: Plan | None) -> None:
        steps: dict[str, tuple[int, dict[str, Any]]] = {}
        for index, step in enumerate(raw_steps):
            if not isinstance(step, dict) or not isinstance(step.get("id"), str):
                continue  # already reported by the schema check
            sid = step["id"]
            if sid in steps:
                self.add(
                    Code.DUPLICATE_STEP_ID,
                    f"step id '{sid}' is used by steps {steps[sid][0]} and {index}",
                    step_id=sid,
                    path=f"$.steps[{index}].id",
                    hint="step ids must be unique",
                )
                continue
            steps[sid] = (index, step)

        self._bits = {s: 1 << i for i, s in enumerate(steps)}  # the bits of graph.ancestor_bits
        deps = self._check_dependencies(steps)
        # Steps outside a cycle (and not downstream of one) get an entry, so their references are checked.
        ancestors = graph.ancestor_bits(deps)
        cycle = graph.cycle_path(deps) if len(ancestors) < len(deps) else None
        if cycle is not None:
            self._report_cycle(steps, cycle)
        else:
            self._check_shape(steps, deps)
        nesting = {sid: _nesting(s["args"]) for sid, (_, s) in steps.items() if isinstance(s.get("args"), dict)}
        shallow = not any(depth > self.limits.max_nesting for depth in nesting.values())
        # The plan's canonical JSON gives its hash, and when it fits the per-step size limit, so
        # does every step's arguments (each is encoded inside it, byte for byte).
        encoded = _canonical_bytes(plan) if plan is not None and shallow else None
        if encoded is not None:
            self.plan_hash = digest_of(encoded)
        sizes_fit = shallow and (
            (encoded is not None and len(encoded) <= self.limits.max_arg_bytes)
            or self._all_args_fit([s["args"] for sid, (_, s) in steps.items() if sid in nesting])
        )
        catalog = self.catalog
        tools = {
            sid: catalog.get(s["tool"]) if isinstance(s.get("tool"), str) else None for sid, (_, s) in steps.items()
        }
        for sid, (index, step) in steps.items():
            tool = tools[sid]
            if tool is None:
                self._unknown_tool(sid, index, step)
            shallow = self._check_step_limits(sid, index, step, tool, nesting.get(sid, 0), sizes_fit)
            args = step.get("args", {})
            if not isinstance(args, dict):
                continue
            ref_keys = self._check_refs(sid, index, args, tool, steps, tools, ancestors)
            if tool is not None and shallow:
                self._check_args(sid, index, args, tool, ref_keys)

    def _check_dependencies(self, steps: dict[str, tuple[int, dict[str, Any]]]) -> dict[str, list[str]]:
        deps: dict[str, list[str]] = {}
        for sid, (index, step) in steps.items():
            raw = step.get("depends_on", [])
            good: list[str] = []
            for j, dep in enumerate(raw if isinstance(raw, list) else []):
                if not isinstance(dep, str):
                    continue
                if dep == sid:
                    path = f"$.steps[{index}].depends_on[{j}]"
                    self.add(Code.SELF_DEPENDENCY, f"step '{sid}' depends on itself", step_id=sid, path=path)
                elif dep not in steps:
                    self.add(
                        Code.UNKNOWN_DEPENDENCY,
                        f"step '{sid}' depends on unknown step '{dep}'",
                        step_id=sid,
                        path=f"$.steps[{index}].depends_on[{j}]",
                        hint=did_you_mean(dep, steps) or choices_hint(list(steps)),
                    )
                elif dep not in good:
                    good.append(dep)
            deps[sid] = good
        return deps

    def _report_cycle(self, steps: dict[str, tuple[int, dict[str, Any]]], cycle: list[str]) -> None:
        first = cycle[0]
        self.add(
            Code.DEPENDENCY_CYCLE,
            "dependency cycle: " + " -> ".join(cycle),
            step_id=first,
            path=f"$.steps[{steps[first][0]}].depends_on",
            hint="a plan is a directed acyclic graph; remove one of these dependencies",
        )

    def _check_shape(self, steps: dict[str, tuple[int, dict[str, Any]]], deps: dict[str, list[str]]) -> None:
        """Fan-in, fan-out, depth and level width of an acyclic plan."""
        limits = self.limits
        if len(deps) <= min(limits.max_fan_in, limits.max_fan_out, limits.max_depth, limits.max_level_width):
            return  # nothing can be over a limit: fan-in and fan-out < steps, depth and level width <= steps
        fan_out: dict[str, int] = dict.fromkeys(deps, 0)
        for sid, parents in deps.items():
            for parent in parents:
                fan_out[parent] += 1
            if len(parents) > limits.max_fan_in:
                self.add(
                    Code.FAN_IN_EXCEEDED,
                    f"step '{sid}' waits for {len(parents)} steps, over the limit of {limits.max_fan_in}",
                    step_id=sid,
                    path=f"$.steps[{steps[sid][0]}].depends_on",
                )
        for sid, count in fan_out.items():
            if count > limits.max_fan_out:
                self.add(
                    Code.FAN_OUT_EXCEEDED,
                    f"{count} steps depend on '{sid}', over the limit of {limits.max_fan_out}",
                    step_id=sid,
                    path=f"$.steps[{steps[sid][0]}]",
                )
        placed = graph.levels(deps)
        if len(placed) > limits.max_depth:
            self.add(
                Code.DEPTH_EXCEEDED,
                f"the longest chain of dependent steps is {len(placed)} long, over the limit of {limits.max_depth}",
                step_id=placed[-1][0],  # the end of a longest chain: the first step of the deepest level
                path="$.steps",
            )
        for level, members in enumerate(placed, 1):  # each level is in plan order
            if len(members) > limits.max_level_width:
                self.add(
                    Code.LEVEL_TOO_WIDE,
                    f"{len(members)} steps would run side by side at level {level}, over the limit of "
                    f"{limits.max_level_width}",
                    step_id=members[0],
                    path="$.steps",
                    hint="chain some of them with depends_on, or merge them into fewer steps",
                )

    def _unknown_tool(self, sid: str, index: int, step: dict[str, Any]) -> None:
        name = step.get("tool")
        if isinstance(name, str):  # a tool that is not a string is the schema check's to report
            self.add(
                Code.UNKNOWN_TOOL,
                f"tool '{name}' is not in the catalog '{self.catalog.name}'",
                step_id=sid,
                path=f"$.steps[{index}].tool",
                hint=did_you_mean(name, self.catalog) or choices_hint(list(self.catalog)),
            )

    def _all_args_fit(self, every_args: list[dict[str, Any]]) -> bool:
        """True when all steps' arguments together fit the per-step size limit, so each one does.

        One encoding for the arguments of a plan too large to settle it with the whole plan's;
        False (check each step) when they do not fit or hold text that is not Unicode. Only
        called when no arguments nest too deeply to encode safely.
        """
        try:
            return len(canonical_json(every_args).encode()) <= self.limits.max_arg_bytes
        except UnicodeEncodeError:
            return False

    def _check_step_limits(
        self, sid: str, index: int, step: dict[str, Any], tool: Tool | None, nesting: int, size_fits: bool
    ) -> bool:
        """Check size, nesting, retries and timeout; False when the arguments nest too deeply to inspect."""
        args = step.get("args")
        shallow = True
        if isinstance(args, dict) and not size_fits:
            if nesting > self.limits.max_nesting:
                # Recursive code (json.dumps, jsonschema, repr) must not see this: it can overflow the stack.
                shallow = False
                self.add(
                    Code.NESTING_TOO_DEEP,
                    f"arguments nest {nesting} levels deep, over the limit of {self.limits.max_nesting}",
                    step_id=sid,
                    path=f"$.steps[{index}].args",
                )
            try:
                size = len(canonical_json(args).encode()) if shallow else 0
            except UnicodeEncodeError:  # a lone surrogate (\ud800): not Unicode text, cannot be hashed or stored
                shallow, size = False, 0
                self.add(
                    Code.INVALID_VALUE,
                    "arguments hold a lone UTF-16 surrogate (U+D800..U+DFFF), which is not Unicode text",
                    step_id=sid,
                    path=f"$.steps[{index}].args",
                )
            if size > self.limits.max_arg_bytes:
                self.add(
                    Code.ARGUMENT_TOO_LARGE,
                    f"arguments are {size} bytes, over the limit of {self.limits.max_arg_bytes}",
                    step_id=sid,
                    path=f"$.steps[{index}].args",
                    hint="pass large data by reference to an earlier step's output",
                )
        if tool is None:
            return shallow
        retries = step.get("retries")
        if isinstance(retries, int) and retries > tool.max_retries:
            self.add(
                Code.RETRIES_EXCEED_LIMIT,
                f"retries={retries} is over tool '{tool.name}''s limit of {tool.max_retries}",
                step_id=sid,
                path=f"$.steps[{index}].retries",
            )
        timeout = step.get("timeout_seconds")
        if isinstance(timeout, _NUMBER) and tool.max_timeout_seconds and timeout > tool.max_timeout_seconds:
            self.add(
                Code.TIMEOUT_EXCEEDS_LIMIT,
                f"timeout_seconds={timeout} is over tool '{tool.name}''s limit of {tool.max_timeout_seconds}",
                step_id=sid,
                path=f"$.steps[{index}].timeout_seconds",
            )
        return shallow

    def _check_refs(
        self,
        sid: str,
        index: int,
        args: dict[str, Any],
        tool: Tool | None,
        steps: dict[str, tuple[int, dict[str, Any]]],
        tools: dict[str, Tool | None],
        ancestors: dict[str, int],
    ) -> set[str]:
        """Check every reference; return the top-level argument names that hold one."""
        ref_keys: set[str] = set()
        allowed = tool.referenceable_params() if tool is not None else None
        bit = self._bits
        # args that are themselves a reference object: checked (and refused) as one, under the key ''
        items = [("", args)] if REF_KEY in args else args.items()
        for key, value in items:
            if isinstance(value, dict) and REF_KEY in value:
                here = f"$.steps[{index}].args.{key}" if key else f"$.steps[{index}].args"
                found: Iterable[tuple[str, dict[str, Any]]] = ((here, value),)
            elif isinstance(value, _CONTAINER):
                found = iter_refs(value, f"$.steps[{index}].args.{key}")
            else:
                continue  # a plain value: the commonest case costs one isinstance
            for path, obj in found:
                ref_keys.add(key)
                try:
                    ref = parse_ref(obj)
                except RefSyntaxError as exc:
                    self.add(
                        exc.code,
                        str(exc),
                        step_id=sid,
                        path=path,
                        hint=exc.hint or 'write {"$ref": "steps.<step_id>.output.<key>"}',
                    )
                    continue
                if allowed is not None and key not in allowed:
                    self.add(
                        Code.REFERENCE_NOT_SUPPORTED,
                        f"argument '{key}' of operator tool '{tool.name}' "  # type: ignore[union-attr]
                        "cannot hold a reference",
                        step_id=sid,
                        path=path,
                        hint=_referenceable_hint(tool, allowed),
                    )
                    continue
                if ref.namespace != "steps":
                    produced = self._context_ref_types(sid, path, ref)
                    if produced and obj is value and tool is not None and not _fits(tool, key, produced):
                        self._ref_type_mismatch(sid, path, ref.text, tool, key, produced)
                    continue
                if ref.step_id not in steps:
                    self.add(
                        Code.REFERENCE_UNKNOWN_STEP,
                        f"'{ref.text}' refers to unknown step '{ref.step_id}'",
                        step_id=sid,
                        path=path,
                        hint=did_you_mean(ref.step_id, steps) or choices_hint(list(steps)),
                    )
                    continue
                if ref.step_id == sid:
                    self.add(
                        Code.REFERENCE_NOT_UPSTREAM,
                        f"'{ref.text}' refers to the step's own output",
                        step_id=sid,
                        path=path,
                        hint="a step can only use outputs of steps it depends on",
                    )
                    continue
                if sid in ancestors and not ancestors[sid] & bit[ref.step_id]:
                    self.add(
                        Code.REFERENCE_NOT_UPSTREAM,
                        f"'{ref.text}' refers to step '{ref.step_id}', which does not run before '{sid}'",
                        step_id=sid,
                        path=path,
                        hint=f"add '{ref.step_id}' to depends_on of '{sid}'",
                    )
                    continue
                producer = tools[ref.step_id]
                if producer is None:
                    continue
                exists, produced = _output_types(producer, ref.path)
                if not exists:
                    self.add(
                        Code.REFERENCE_BAD_PATH,
                        f"'{ref.text}': tool '{producer.name}' output has no '{'.'.join(ref.path)}'",
                        step_id=sid,
                        path=path,
                        hint=_output_keys_hint(producer.output_schema),
                    )
                    continue
                if obj is value and tool is not None and produced and not _fits(tool, key, produced):
                    self._ref_type_mismatch(sid, path, ref.text, tool, key, produced)
        return ref_keys

    def _context_ref_types(self, sid: str, path: str, ref: Ref) -> frozenset[str] | None:
        """The JSON types a ``run`` or ``params`` reference gives (empty: unknown); None after an issue."""
        if ref.namespace == "run":
            return _RUN_TYPES[ref.name]
        declared = self.data.get("params")
        spec = declared.get(ref.name) if isinstance(declared, dict) else None
        if not isinstance(spec, dict):
            names = sorted(declared) if isinstance(declared, dict) else []
            self.add(
                Code.PARAM_NOT_DECLARED,
                f"'{ref.text}' refers to param '{ref.name}', which the plan does not declare",
                step_id=sid,
                path=path,
                hint=did_you_mean(ref.name, names) or f"declare it under $.params.{ref.name}",
            )
            return None
        if not ref.path:
            return frozenset(_types(spec))
        exists, sub = schema_at(param_schema(spec), ref.path)
        if not exists:
            self.add(
                Code.REFERENCE_BAD_PATH,
                f"'{ref.text}': param '{ref.name}' has no '{'.'.join(ref.path)}'",
                step_id=sid,
                path=path,
            )
            return None
        return frozenset(_types(sub)) if sub is not None else frozenset()

    def _ref_type_mismatch(self, sid: str, path: str, text: str, tool: Tool, key: str, have: frozenset[str]) -> None:
        want = _input_types(tool, key)  # _fits has found them incompatible
        self.add(
            Code.REFERENCE_TYPE_MISMATCH,
            f"'{text}' produces {sorted(have)} but '{key}' of '{tool.name}' takes {sorted(want)}",
            step_id=sid,
            path=path,
        )

    def _check_args(self, sid: str, index: int, args: dict[str, Any], tool: Tool, ref_keys: set[str]) -> None:
        props, closed, fixed = _arg_names(tool)
        if fixed and not fixed.isdisjoint(args):
            for key in sorted(fixed.intersection(args)):
                self.add(
                    Code.FIXED_ARGUMENT,
                    f"argument '{key}' of tool '{tool.name}' is fixed by the catalog and cannot be set by a plan",
                    step_id=sid,
                    path=f"$.steps[{index}].args.{key}",
                )
        if closed and ref_keys and not ref_keys <= props:
            for key in sorted(ref_keys - props - fixed - {""}):
                # the schema check below skips reference-holding arguments, so vet their names here
                self.add(
                    Code.INVALID_ARGUMENT,
                    f"tool '{tool.name}': unknown argument '{key}'",
                    step_id=sid,
                    path=f"$.steps[{index}].args.{key}",
                    hint=did_you_mean(key, props) or choices_hint(sorted(props)),
                )
        instance = {k: v for k, v in args.items() if k not in ref_keys} if ref_keys else args
        optional = frozenset(ref_keys)
        fast = tool.input_fast_check(optional)  # sound for valid arguments; jsonschema gives every verdict else
        if fast is not None and fast(instance):
            return
        validator = self._validator(tool, optional)
        if validator.is_valid(instance):
            return
        allowed = sorted(tool.input_schema.get("properties", {}))
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            hint = None
            if error.validator == "additionalProperties":
                extra = [k for k in instance if k not in allowed]
                if isinstance(tool, OperatorTool) and set(extra) <= set(tool.fixed):
                    continue  # already reported as fixed_argument
                hint = (did_you_mean(extra[0], allowed) if extra else None) or choices_hint(allowed)
            self.add(
                Code.INVALID_ARGUMENT,
                f"tool '{tool.name}': {error.message}",
                step_id=sid,
                path=f"$.steps[{index}].args{where}",
                hint=hint,
            )

    def _validator(self, tool: Tool, ref_keys: frozenset[str]) -> jsonschema.Draft202012Validator:
        """Referenced arguments are checked by type separately; they need not be present here."""
        return tool.input_validator_without(ref_keys) if ref_keys else tool.input_validator

    def _check_schedule(self, schedule: Any) -> None:
        if not isinstance(schedule, str) or schedule in _PRESETS:
            return
        if not _valid_cron(schedule):
            self.add(
                Code.INVALID_SCHEDULE,
                f"schedule {schedule!r} is neither a cron expression nor a preset",
                path="$.schedule",
                hint=f"use 5-field cron or one of {sorted(_PRESETS)}",
            )


def _canonical_bytes(plan: Plan) -> bytes | None:
    """The plan's canonical JSON; None when it holds text that is not Unicode (reported per step)."""
    try:
        return plan.canonical_bytes()
    except (UnicodeEncodeError, RecursionError, ValueError):  # ValueError: pydantic's serialization errors
        return None


@functools.lru_cache(maxsize=256)
def _valid_cron(expression: str) -> bool:
    from croniter import croniter

    return bool(croniter.is_valid(expression))


def _referenceable_hint(tool: Tool | None, allowed: frozenset[str]) -> str:
    declared = set((tool.input_schema if tool else {}).get("properties", {}))
    usable = sorted(allowed & declared)
    return f"references work in: {usable}" if usable else "pass a literal value"


def _nesting(value: dict[str, Any] | list[Any], depth: int = 1) -> int:
    """How deep dicts and lists nest (1 for flat arguments); stops counting past 64 levels."""
    deepest = depth
    for child in value.values() if isinstance(value, dict) else value:
        if isinstance(child, _CONTAINER):
            if depth > 64:
                return depth + 1
            below = _nesting(child, depth + 1)
            if below > deepest:
                deepest = below
    return deepest


# Memoised per tool (``Tool.schema_facts``): a plans folder asks the same few questions thousands of times.


def _output_types(tool: Tool, path: tuple[str, ...]) -> tuple[bool, frozenset[str]]:
    """Whether ``path`` can exist in the tool's output, and the JSON types found there (empty: unknown)."""
    facts = tool.schema_facts
    found = facts.get(("output", path))
    if found is None:
        exists, sub = schema_at(tool.output_schema, path)
        found = facts[("output", path)] = (exists, frozenset(_types(sub)) if sub is not None else frozenset())
    return found  # type: ignore[no-any-return]


def _input_types(tool: Tool, key: str) -> frozenset[str]:
    facts = tool.schema_facts
    found = facts.get(("input", key))
    if found is None:
        found = facts[("input", key)] = frozenset(_types(tool.input_schema.get("properties", {}).get(key, {})))
    return found  # type: ignore[no-any-return]


def _fits(tool: Tool, key: str, have: frozenset[str]) -> bool:
    """Whether a reference producing ``have`` may feed argument ``key`` (unknown types fit)."""
    facts = tool.schema_facts
    found = facts.get(("fits", key, have))
    if found is None:
        want = _input_types(tool, key)
        found = facts[("fits", key, have)] = not want or _compatible(have, want)
    return found  # type: ignore[no-any-return]


def _arg_names(tool: Tool) -> tuple[frozenset[str], bool, frozenset[str]]:
    """The declared argument names, whether the schema refuses others, and the catalog-fixed names."""
    facts = tool.schema_facts
    found = facts.get("args")
    if found is None:
        schema = tool.input_schema
        fixed = frozenset(tool.fixed) if isinstance(tool, OperatorTool) else frozenset()
        found = facts["args"] = (
            frozenset(schema.get("properties", {})),
            schema.get("additionalProperties") is False,
            fixed,
        )
    return found  # type: ignore[no-any-return]


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches and all(isinstance(b, dict) and "type" in b for b in branches):
        return set().union(*(_types(b) for b in branches))
    return set()


def _compatible(have: frozenset[str], want: frozenset[str]) -> bool:
    if have & want:
        return True
    return "integer" in have and "number" in want


def _output_keys_hint(schema: dict[str, Any] | None) -> str | None:
    props = (schema or {}).get("properties")
    return choices_hint(sorted(props)) if props else None


def _json_path(loc: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


__all__ = ["ValidationResult", "contains_ref", "parse_plan", "validate_plan"]
