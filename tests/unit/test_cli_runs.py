"""``airflow-claude replay`` and ``export``: against a local HTTP server that answers as the plugin's API does."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from shop import build_plan, build_step, diamond

from airflow_claude.cli import main
from airflow_claude.plan.model import Plan

Capsys = pytest.CaptureFixture[str]


class PluginAPI:
    """What the CLI asks of the plugin: a run's export, the replay POST, the DAG run state."""

    def __init__(self, bundle: dict[str, Any], status: int = 200) -> None:
        self.bundle, self.status = bundle, status
        self.seen: list[tuple[str, str, Any, str | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.seen.append(("GET", self.path, None, self.headers.get("Authorization")))
                if self.path.endswith("/export"):
                    self._reply(api.status, api.bundle)
                elif self.path.startswith("/api/v2/dags/"):
                    self._reply(200, {"state": "success"})
                else:
                    self._reply(404, {"detail": "no such route"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.seen.append(("POST", self.path, body, self.headers.get("Authorization")))
                self._reply(api.status, {"dag_id": body.get("target_dag_id") or "shop", "run_id": "replay__1"})

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> PluginAPI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plan() -> dict[str, Any]:
    return Plan.model_validate(diamond()).model_dump(mode="json")


@pytest.fixture
def bundle(plan: dict[str, Any]) -> dict[str, Any]:
    digest = Plan.model_validate(plan).hash
    return {"format": "airflow-claude-export/1", "plan": plan, "plan_hash": digest, "cassette": {"rules": []}}


@pytest.fixture
def catalog_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "shop_catalog_runs.py").write_text("from shop import CATALOG as catalog\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shop_catalog_runs", raising=False)
    return "shop_catalog_runs:catalog"


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_asks_the_plugin_for_the_runs_own_plan_by_hash(capsys: Capsys, bundle: dict[str, Any]) -> None:
    with PluginAPI(bundle) as api:
        code, out, _ = run(capsys, "replay", "shop", "manual__1", "--url", api.url, "--token", "t0k", "--wait")
    assert code == 0, out
    posts = [s for s in api.seen if s[0] == "POST"]
    assert len(posts) == 1
    _, path, body, auth = posts[0]
    assert path == "/airflow-claude/api/replay"
    assert body == {"plan_hash": bundle["plan_hash"], "target_dag_id": None,
                    "source": {"dag_id": "shop", "run_id": "manual__1"}}
    assert auth == "Bearer t0k"
    assert "replay__1" in out and "ended: success" in out


def test_replay_into_the_compiled_runtime_writes_the_exact_plan(
    capsys: Capsys, tmp_path: Path, bundle: dict[str, Any]
) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps(bundle))
    folder = tmp_path / "plans"
    folder.mkdir()
    code, _out, err = run(capsys, "replay", "--from-export", str(export), "--plans-dir", str(folder))
    assert code == 0, err
    written = folder / f"{bundle['plan']['id']}.json"
    assert Plan.model_validate(json.loads(written.read_text())).hash == bundle["plan_hash"]
    other = build_plan(build_step("load", "load_orders", {"source": "x"}), id=bundle["plan"]["id"])
    written.write_text(json.dumps(other))
    code, _, err = run(capsys, "replay", "--from-export", str(export), "--plans-dir", str(folder))
    assert code == 2 and "holds another plan" in err


def test_a_plan_whose_tools_changed_is_refused_with_the_validators_errors(
    capsys: Capsys, tmp_path: Path, catalog_spec: str
) -> None:
    stale = Plan.model_validate(build_plan(build_step("load", "load_orders_v0", {"source": "x"}))).model_dump(
        mode="json"
    )
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"plan": stale, "plan_hash": Plan.model_validate(stale).hash}))
    code, _, err = run(capsys, "replay", "--from-export", str(export), "--catalog", catalog_spec, "--into", "shop")
    assert code == 1
    assert "load_orders_v0" in err and "replay refused" in err


def test_a_tampered_export_is_refused(capsys: Capsys, tmp_path: Path, bundle: dict[str, Any]) -> None:
    bundle["plan"]["goal"] = "something else"
    export = tmp_path / "export.json"
    export.write_text(json.dumps(bundle))
    code, _, err = run(capsys, "replay", "--from-export", str(export), "--into", "shop", "--token", "t")
    assert code == 2 and "does not match its recorded hash" in err


def test_forbidden_is_a_clear_error(capsys: Capsys, bundle: dict[str, Any]) -> None:
    with PluginAPI(bundle, status=403) as api:
        code, _, err = run(capsys, "replay", "shop", "manual__1", "--url", api.url, "--token", "viewer")
    assert code == 2 and "HTTP 403" in err


def test_export_writes_plan_cassette_and_report(capsys: Capsys, tmp_path: Path, bundle: dict[str, Any]) -> None:
    bundle["report"] = {"status": "succeeded"}
    with PluginAPI(bundle) as api:
        code, _out, err = run(capsys, "export", "shop", "manual__1", "-o", str(tmp_path / "out"), "--url", api.url,
                             "--token", "t")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["cassette.json", "export.json", "plan.json", "report.json"]
    assert json.loads((tmp_path / "out" / "plan.json").read_text()) == bundle["plan"]


def test_no_token_is_a_usage_error(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CLAUDE_TOKEN", raising=False)
    code, _, err = run(capsys, "export", "shop", "r", "-o", "x", "--url", "http://127.0.0.1:9")
    assert code == 2 and "no token" in err


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AIRFLOW_CLAUDE_TOKEN", raising=False)
    yield


def test_a_compiled_run_whose_plan_file_the_server_cannot_read_replays_by_hash(
    capsys: Capsys, bundle: dict[str, Any]
) -> None:
    """The export's plan was rebuilt for display (inexact): the DAG holds the plan, so the hash is enough."""
    rebuilt = {**bundle, "kind": "plan", "plan_exact": False, "plan": {**bundle["plan"], "goal": "(rebuilt)"}}
    with PluginAPI(rebuilt) as api:
        code, out, err = run(capsys, "replay", "nightly", "scheduled__1", "--url", api.url, "--token", "t")
    assert code == 0, (out, err)
    posts = [s[2] for s in api.seen if s[0] == "POST"]
    source = {"dag_id": "nightly", "run_id": "scheduled__1"}
    assert posts == [{"plan_hash": bundle["plan_hash"], "target_dag_id": None, "source": source}]


def test_an_export_without_its_exact_plan_is_refused_naming_the_way_out(
    capsys: Capsys, tmp_path: Path, bundle: dict[str, Any]
) -> None:
    """A rebuilt plan is for display only: replaying it from the file would run another plan."""
    rebuilt = {**bundle, "kind": "plan", "plan_exact": False}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(rebuilt))
    with PluginAPI(rebuilt) as api:
        argv = ["replay", "--from-export", str(path), "--into", "nightly", "--url", api.url, "--token", "t"]
        code, _, err = run(capsys, *argv)
    assert code == 2 and "holds no exact plan" in err and "airflow-claude replay DAG_ID RUN_ID" in err
    assert [s for s in api.seen if s[0] == "POST"] == []
