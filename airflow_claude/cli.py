"""The ``airflow-claude`` command: validate plan files, draw a plan's graph, print the plan schema, replay runs.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments and
``cmd_<name>(args) -> int`` runs it. Exit codes: 0 success, 1 invalid plan(s), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from airflow_claude import __version__
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.errors import AirflowClaudeError, Code, PlanIssue
from airflow_claude.plan import graph
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.loader import load_plan_file, parse_json_text
from airflow_claude.plan.model import Plan, Step, plan_json_schema
from airflow_claude.plan.validator import validate_plan

if TYPE_CHECKING:
    from airflow_claude.planner.gateway import ModelGateway

CATALOG_ENV = "AIRFLOW_CLAUDE_CATALOG"
EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_DIFFERENT = 1  # ``diff``: the plans differ


class UsageError(AirflowClaudeError):
    """A mistake in how the command was called (exit code 2)."""


# -- shared helpers ----------------------------------------------------------------------------


def load_catalog(spec: str | None) -> Catalog:
    """Import ``module:attr`` (``attr`` may be dotted); the current directory is importable."""
    spec = spec or os.environ.get(CATALOG_ENV)
    if not spec:
        raise UsageError(f"no catalog: pass --catalog MODULE:ATTR or set {CATALOG_ENV}")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--catalog must look like 'package.module:CATALOG', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # the author's module may fail in any way; report it, do not crash
        raise UsageError(f"cannot load catalog {spec!r}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(target, Catalog):
        raise UsageError(f"{spec!r} is not an airflow_claude Catalog (it is a {type(target).__name__})")
    return target


def plan_files(paths: Sequence[str]) -> list[Path]:
    """Files as given; directories expand to the ``*.json`` files directly inside them, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.json") if p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise UsageError(f"no such file or directory: {raw}")
    return files


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- validate ----------------------------------------------------------------------------------


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check plan files against a catalog and the limits")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="plan files or directories of *.json plans")
    parser.add_argument("--catalog", metavar="MODULE:ATTR", help=f"the tool catalog (default: ${CATALOG_ENV})")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--max-steps", type=_positive_int, metavar="N", help="override PlanLimits.max_steps")
    parser.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    files = plan_files(args.paths)
    limits = PlanLimits(max_steps=args.max_steps) if args.max_steps else DEFAULT_LIMITS
    issues: list[PlanIssue] = []
    invalid = 0
    for path in files:
        result = load_plan_file(path, catalog, limits=limits)
        if not result.ok:
            invalid += 1
            issues.extend(result.issues)
    if not files:
        print(f"warning: no *.json plan files in {' '.join(args.paths)}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps([issue.to_dict() for issue in issues], indent=2, ensure_ascii=False))
    else:
        for issue in issues:
            print(issue)
        print(f"{len(files)} plan{'s' if len(files) != 1 else ''} checked, {invalid} invalid")
    return EXIT_INVALID if invalid else EXIT_OK


# -- render ------------------------------------------------------------------------------------


def _add_render(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("render", help="draw a plan's task graph as text and/or Mermaid")
    parser.add_argument("plan", metavar="PLAN", help="a plan file")
    parser.add_argument("--format", choices=("text", "mermaid", "both"), default="text", help="output format")
    parser.add_argument(
        "--catalog", metavar="MODULE:ATTR", help="validate fully against this catalog (default: structure only)"
    )
    parser.set_defaults(handler=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    path = Path(args.plan)
    if not path.is_file():
        raise UsageError(f"no such file: {args.plan}")
    plan, issues = _read_plan(path, args.catalog)
    order = _topological(plan, issues, str(path)) if plan is not None else None
    if plan is None or order is None:
        for issue in issues:
            print(issue, file=sys.stderr)
        return EXIT_INVALID
    parts = []
    if args.format in ("text", "both"):
        parts.append(render_text(plan, order))
    if args.format in ("mermaid", "both"):
        parts.append(render_mermaid(plan, order))
    print("\n\n".join(parts))
    return EXIT_OK


def _read_plan(path: Path, catalog_spec: str | None) -> tuple[Plan | None, list[PlanIssue]]:
    """Full validation with a catalog; otherwise strict JSON plus the pydantic model."""
    if catalog_spec:
        result = load_plan_file(path, load_catalog(catalog_spec), require_id_matches_file=False)
        return (result.plan if result.ok else None), result.issues
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from exc
    data, issues = parse_json_text(raw, file=file)
    if issues:
        return None, issues
    try:
        return Plan.model_validate(data), []
    except ValidationError as exc:
        return None, [
            PlanIssue(
                Code.INVALID_VALUE,
                str(error["msg"]),
                file=file,
                path="$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]),
            )
            for error in exc.errors(include_url=False)
        ]


def _topological(plan: Plan, issues: list[PlanIssue], file: str) -> list[Step] | None:
    """Steps in dependency order (ties kept in plan order); None, with issues added, if not a DAG."""
    steps = plan.steps
    index = {step.id: i for i, step in enumerate(steps)}
    for step in steps:
        for dep in step.depends_on:
            if dep not in index:
                message = f"step '{step.id}' depends on unknown step '{dep}'"
                issues.append(PlanIssue(Code.UNKNOWN_DEPENDENCY, message, file, plan.id, step.id, "$.steps"))
    if len(index) != len(steps):
        issues.append(PlanIssue(Code.DUPLICATE_STEP_ID, "step ids are not unique", file, plan.id, None, "$.steps"))
    if issues:
        return None
    deps = {step.id: step.depends_on for step in steps}
    cycle = graph.cycle_path(deps)
    if cycle is not None:
        message = "dependency cycle: " + " -> ".join(cycle)
        issues.append(PlanIssue(Code.DEPENDENCY_CYCLE, message, file, plan.id, cycle[0], "$.steps"))
        return None
    by_id = {step.id: step for step in steps}
    return [by_id[sid] for sid in graph.order(deps)]


def render_text(plan: Plan, order: Sequence[Step]) -> str:
    """One line per step in run order (tool, and what it waits for), then the edges."""
    width = max(len(step.id) for step in order)
    lines = [f"plan {plan.id}: {len(order)} step{'s' if len(order) != 1 else ''}"]
    for number, step in enumerate(order, 1):
        after = f"  after: {', '.join(step.depends_on)}" if step.depends_on else ""
        lines.append(f"  {number:>{len(str(len(order)))}}. {step.id:<{width}}  [{step.tool}]{after}")
    edges = [f"  {dep} -> {step.id}" for step in order for dep in step.depends_on]
    if edges:
        lines += ["edges:", *edges]
    return "\n".join(lines)


def render_mermaid(plan: Plan, order: Sequence[Step]) -> str:
    """A Mermaid flowchart; node names are generated, so no id or text can break the syntax."""
    node = {step.id: f"s{i}" for i, step in enumerate(order)}
    lines = ["flowchart TD"]
    for step in order:
        label = f"{_mermaid_text(step.id)}<br/>{_mermaid_text(step.tool)}"
        if step.description:
            short = step.description if len(step.description) <= 60 else step.description[:59] + "…"
            label += f"<br/><i>{_mermaid_text(short)}</i>"
        lines.append(f'    {node[step.id]}["{label}"]')
    lines += [f"    {node[dep]} --> {node[step.id]}" for step in order for dep in step.depends_on]
    return "\n".join(lines)


_MERMAID_SPECIAL = frozenset('#&"<>`')


def _mermaid_text(text: str) -> str:
    """Escape for a quoted Mermaid label: entity codes for markup characters, no line breaks."""
    escaped = "".join(f"#{ord(char)};" if char in _MERMAID_SPECIAL else char for char in text)
    return " ".join(escaped.split())


# -- schema ------------------------------------------------------------------------------------


def _add_schema(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", help="print the plan JSON Schema (the shipped plan.schema.json)")
    parser.set_defaults(handler=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(plan_json_schema(), indent=2, sort_keys=True) + "\n")
    return EXIT_OK


# -- plan --------------------------------------------------------------------------------------


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("plan", help="ask Claude for a validated plan file")
    parser.add_argument("--goal", required=True, help="what the automation must achieve")
    parser.add_argument("--catalog", help=f"MODULE:ATTR of the Catalog (default: ${CATALOG_ENV})")
    parser.add_argument("-o", "--output", required=True, help="plan file to write (or a folder: <plan id>.json)")
    parser.add_argument("--plan-id", help="plan id (default: the output file's name)")
    parser.add_argument("--schedule", help="cron or preset to put in the plan, e.g. '0 2 * * *'")
    parser.add_argument(
        "--model", help="model id (default: the --conn-id connection's, else the gateway's DEFAULT_MODEL)"
    )
    parser.add_argument("--base-url", help="Messages API base URL (default: $ANTHROPIC_BASE_URL or Anthropic)")
    parser.add_argument("--conn-id", help="use this Airflow 'anthropic' connection instead of ANTHROPIC_API_KEY")
    parser.add_argument("--cache", help="plan cache folder or object-storage URL: same inputs, zero calls")
    parser.add_argument("--max-repairs", type=int, default=2, help="corrections Claude may make (default 2)")
    tape = parser.add_mutually_exclusive_group()
    tape.add_argument("--record-to", metavar="CASSETTE", help="record the real exchanges to a cassette file")
    tape.add_argument("--replay", metavar="CASSETTE", help="replay a recorded cassette offline (no key needed)")
    parser.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    from airflow_claude.planner import ClaudePlanner, PlanCache
    from airflow_claude.planner.errors import PlanningError

    catalog = load_catalog(args.catalog)
    output = Path(args.output)
    plan_id = args.plan_id or (None if output.is_dir() else output.stem)
    with contextlib.ExitStack() as stack:
        planner = ClaudePlanner(
            _gateway(args, stack),
            catalog,
            max_repairs=args.max_repairs,
            cache=PlanCache(args.cache) if args.cache else None,
        )
        try:
            result = planner.plan(args.goal, plan_id=plan_id)
        except PlanningError as exc:
            print(f"airflow-claude plan: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_INVALID
    document = result.plan.model_dump(mode="json", exclude_none=True)
    if args.schedule:
        document["schedule"] = args.schedule
        issues = validate_plan(document, catalog).issues
        if issues:
            _print_issues(issues)
            return EXIT_INVALID
    target = output / f"{result.plan.id}.json" if output.is_dir() else output
    target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    usage = result.usage
    print(
        f"wrote {target}: {len(result.plan.steps)} steps, {result.attempts} attempt(s), "
        f"{usage['calls']} model call(s), ${usage['cost_usd']}{' (from cache)' if result.cached else ''}"
    )
    return EXIT_OK


def _gateway(args: argparse.Namespace, stack: contextlib.ExitStack) -> ModelGateway:
    """A replayed cassette, an Airflow connection, or ``ANTHROPIC_API_KEY`` (maybe recorded), as the gateway."""
    import anthropic

    from airflow_claude.planner.gateway import DEFAULT_MODEL, ModelGateway

    if args.replay:
        from airflow_claude.testing.fake_claude import FakeClaude

        fake = stack.enter_context(FakeClaude())
        fake.load_cassette(args.replay)
        return ModelGateway(anthropic.Anthropic(api_key="replay", base_url=fake.url), args.model or DEFAULT_MODEL)
    if args.conn_id:
        return ModelGateway.from_connection(args.conn_id, args.model)
    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise UsageError("set ANTHROPIC_API_KEY, pass --conn-id, or --replay a cassette")
    base_url = args.base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
    if args.record_to:
        from airflow_claude.testing.fake_claude import CassetteRecorder

        recorder = stack.enter_context(CassetteRecorder(base_url, args.record_to, api_key=key))
        base_url = recorder.url
    return ModelGateway(anthropic.Anthropic(api_key=key, base_url=base_url), args.model or DEFAULT_MODEL)


# -- diff ----------------------------------------------------------------------------------------


def _add_diff(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("diff", help="what changed between two versions of a plan file (exit 1 when any)")
    parser.add_argument("old", metavar="OLD", help="the plan file before")
    parser.add_argument("new", metavar="NEW", help="the plan file after")
    parser.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """One line per change (``plan.diff``), like ``diff``: exit 0 when alike, 1 when they differ."""
    from airflow_claude.plan.diff import plan_changes

    docs: list[dict[str, Any]] = []
    for name in (args.old, args.new):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no such file: {name}")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UsageError(f"{name}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise UsageError(f"{name}: not a plan document (a JSON object)")
        try:
            digest = Plan.model_validate(doc).hash
        except ValidationError:
            digest = "(not a valid plan)"
        print(f"{'---' if not docs else '+++'} {name}: plan {doc.get('id')} {digest}")
        docs.append(doc)
    changes = plan_changes(docs[0], docs[1])
    for line in changes:
        print(f"  {line}")
    if not changes:
        print("  no change in what runs")
    return EXIT_DIFFERENT if changes else EXIT_OK


# -- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-claude", description="Validate, draw and make plan files; replay and export runs."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from airflow_claude.cli_runs import add_export, add_replay  # they import this module's helpers

    for add in (_add_validate, _add_render, _add_diff, _add_schema, _add_plan, add_replay, add_export):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting (tests call this)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help/--version (0) and on usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"airflow-claude {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    raise SystemExit(main())


def _print_issues(issues: Sequence[PlanIssue]) -> None:
    for issue in issues:
        print(str(issue), file=sys.stderr)
