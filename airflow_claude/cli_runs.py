"""``airflow-claude replay`` and ``airflow-claude export``: clients of the plugin's API on a running Airflow.

Replay starts a new run of a past run's exact stored plan (by hash) with no model call: into an
automation, where its approval policy applies (``--into DAG_ID``, default the run's own DAG); a
compiled-plan run into its own DAG while that DAG still runs the plan; or into the compiled-plan
runtime, as a plan file in a plans folder (``--plans-dir``). Export writes a
run's plan, the cassette of its model answers and its report, to reproduce the run offline.
The plugin's API checks the caller's token and DAG permissions; these commands only carry them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from airflow_claude.cli import EXIT_INVALID, EXIT_OK, UsageError, load_catalog
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan

URL_ENV, TOKEN_ENV = "AIRFLOW_CLAUDE_API_URL", "AIRFLOW_CLAUDE_TOKEN"
PREFIX = "/airflow-claude"
EXIT_RUN_FAILED = 3
_FINISHED = ("success", "failed")


class PluginClient:
    """The plugin's JSON API on one api-server, with a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> PluginClient:
        url = args.url or os.environ.get(URL_ENV) or "http://localhost:8080"
        token = args.token or os.environ.get(TOKEN_ENV)
        if not token and args.username:
            password = args.password if args.password is not None else os.environ.get("AIRFLOW_CLAUDE_PASSWORD", "")
            answer = httpx.post(f"{url.rstrip('/')}/auth/token", json={"username": args.username, "password": password})
            if answer.status_code >= 400:
                raise UsageError(f"login as {args.username!r} at {url} failed: HTTP {answer.status_code}")
            token = answer.json()["access_token"]
        if not token:
            raise UsageError(f"no token: pass --token, set {TOKEN_ENV}, or pass --username/--password")
        return cls(url, token)

    def get(self, path: str) -> Any:
        return self._answer(self.http.get(path), path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._answer(self.http.post(path, json=body), path)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.get(f"{PREFIX}/api/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}")
        return detail

    def export(self, dag_id: str, run_id: str) -> dict[str, Any]:
        bundle: dict[str, Any] = self.get(
            f"{PREFIX}/api/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/export"
        )
        return bundle

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        run = self.get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")
        return str(run.get("state"))

    def _answer(self, response: httpx.Response, path: str) -> Any:
        if response.status_code in (401, 403):
            raise UsageError(f"{path}: HTTP {response.status_code}: not allowed (check the token and DAG permissions)")
        if response.status_code >= 400:
            raise UsageError(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the api-server (default: ${URL_ENV} or http://localhost:8080)")
    parser.add_argument("--token", help=f"a bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--username", help="log in through POST /auth/token instead of a token")
    parser.add_argument("--password", help="with --username (default: $AIRFLOW_CLAUDE_PASSWORD)")


# -- replay ------------------------------------------------------------------------------------


def add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replay", help="run a past run's exact plan again, with no model call")
    parser.add_argument("dag_id", nargs="?", metavar="DAG_ID", help="the run's DAG")
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run")
    parser.add_argument("--from-export", metavar="FILE", help="an `airflow-claude export` bundle instead of a run")
    parser.add_argument("--plan-hash", help="which of the run's plans (default: its last round's)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--into", metavar="DAG_ID", help="the DAG that runs it (default: the run's)")
    target.add_argument("--plans-dir", metavar="DIR", help="write it as a plan file for the compiled-plan runtime")
    parser.add_argument("--catalog", metavar="MODULE:ATTR", help="validate against this catalog first (refuse early)")
    parser.add_argument("--wait", action="store_true", help="wait for the new run to finish; exit 3 if it failed")
    parser.add_argument("--timeout", type=float, default=900.0, help="with --wait: seconds (default 900)")
    _add_connection_args(parser)
    parser.set_defaults(handler=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    if args.plan_hash and args.dag_id and not (args.catalog or args.plans_dir or args.from_export):
        return _start(args, None, args.plan_hash, "")  # the server finds that plan among the run's rounds
    bundle = _bundle(args)
    if bundle.get("kind") == "plan" and not bundle.get("plan_exact"):
        # the api-server could not read the plan file: the bundle's plan is rebuilt for display only
        if args.from_export or args.catalog or args.plans_dir:
            raise UsageError(
                "this run's export holds no exact plan (the api-server could not read its plan file); "
                "replay the run itself by name: airflow-claude replay DAG_ID RUN_ID"
            )
        return _start(args, None, str(bundle.get("plan_hash")), f" of plan {(bundle.get('plan') or {}).get('id')}")
    plan, digest, source = _stored_plan(args, bundle)
    if args.catalog:
        result = validate_plan(plan, load_catalog(args.catalog), file=f"plan {plan.get('id')} of {source}")
        if not result.ok:
            for issue in result.issues:
                print(issue, file=sys.stderr)
            print(f"replay refused: plan {plan.get('id')} {digest[:19]} does not fit the catalog", file=sys.stderr)
            return EXIT_INVALID
    if args.plans_dir:
        return _write_plan_file(Path(args.plans_dir), plan, digest)
    return _start(args, plan, digest, f" of plan {plan.get('id')}")


def _start(args: argparse.Namespace, plan: dict[str, Any] | None, digest: str, what: str) -> int:
    """Ask the plugin to start the replay; with ``--wait``, follow the new run to its end."""
    client = PluginClient.from_args(args)
    body: dict[str, Any] = {"plan_hash": digest, "target_dag_id": args.into}
    if args.from_export:
        body["plan"] = plan
    else:
        body["source"] = {"dag_id": args.dag_id, "run_id": args.run_id}
    started = client.post(f"{PREFIX}/api/replay", body)
    print(f"replay{what} {digest[:19]}: run {started['run_id']} of {started['dag_id']}")
    print(f"  {client.url}{PREFIX}/runs/{quote(started['dag_id'], safe='')}/{quote(started['run_id'], safe='')}")
    if not args.wait:
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    state = client.dag_run_state(started["dag_id"], started["run_id"])
    while state not in _FINISHED and time.monotonic() < deadline:
        time.sleep(2.0)
        state = client.dag_run_state(started["dag_id"], started["run_id"])
    print(f"  ended: {state}")
    return EXIT_OK if state == "success" else EXIT_RUN_FAILED


def _bundle(args: argparse.Namespace) -> dict[str, Any]:
    """The export bundle of the run named (fetched from the plugin) or of ``--from-export``."""
    if args.from_export:
        found = json.loads(Path(args.from_export).read_text(encoding="utf-8"))
    elif args.dag_id and args.run_id:
        found = PluginClient.from_args(args).export(args.dag_id, args.run_id)
    else:
        raise UsageError("name a run (DAG_ID RUN_ID) or pass --from-export FILE")
    if not isinstance(found, dict):
        raise UsageError("the export is not a JSON object")
    return found


def _stored_plan(args: argparse.Namespace, bundle: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The plan to replay, its hash and where it came from (the run, or an export bundle)."""
    plan = bundle.get("plan")
    source = f"export {args.from_export}" if args.from_export else f"run {args.run_id} of {args.dag_id}"
    if not isinstance(plan, dict):
        raise UsageError(f"{source} holds no plan")
    digest = _hash(plan, source)
    if args.plan_hash and args.plan_hash != digest:
        raise UsageError(f"{source}: its plan's hash is {digest}, not {args.plan_hash}")
    if bundle.get("plan_hash") and bundle["plan_hash"] != digest:
        raise UsageError(f"{source}: the plan does not match its recorded hash {bundle['plan_hash']}")
    return plan, digest, source


def _hash(plan: dict[str, Any], where: str) -> str:
    try:
        return Plan.model_validate(plan).hash
    except ValidationError as exc:
        raise UsageError(f"{where}: not a plan: {exc}") from exc


def _write_plan_file(folder: Path, plan: dict[str, Any], digest: str) -> int:
    """The compiled-plan runtime reads plan files: write this one, never over a different plan."""
    if not folder.is_dir():
        raise UsageError(f"no such plans folder: {folder}")
    target = folder / f"{plan['id']}.json"
    if target.exists():
        try:
            existing = _hash(json.loads(target.read_text(encoding="utf-8")), str(target))
        except (ValueError, UsageError):
            existing = "unreadable"
        if existing != digest:
            raise UsageError(f"{target} holds another plan ({existing[:19]}); move it or pick another folder")
    target.write_text(json.dumps(plan, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target}: plan {plan['id']} {digest[:19]}; the DAG appears after the next parse of the folder")
    return EXIT_OK


# -- export ------------------------------------------------------------------------------------


def add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("export", help="write a run's plan, the cassette of its model answers and its report")
    parser.add_argument("dag_id", metavar="DAG_ID")
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the files (created)")
    _add_connection_args(parser)
    parser.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    bundle = PluginClient.from_args(args).export(args.dag_id, args.run_id)
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"export.json": bundle, "plan.json": bundle.get("plan"), "cassette.json": bundle.get("cassette")}
    if bundle.get("report") is not None:
        files["report.json"] = bundle["report"]
    for name, value in files.items():
        (folder / name).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {', '.join(sorted(files))} to {folder}")
    print(f"  offline: python -m airflow_claude.testing.fake_claude --script {folder / 'cassette.json'}")
    print(f"  replay:  airflow-claude replay --from-export {folder / 'export.json'} --into DAG_ID")
    return EXIT_OK
