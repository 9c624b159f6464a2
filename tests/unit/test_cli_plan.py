"""``airflow-claude plan``: a validated plan file from a goal, live, recorded and replayed offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_claude.cli import main
from airflow_claude.examples.orders import catalog
from airflow_claude.factory import load_plan_dags
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.testing import FakeClaude

STEPS = json.loads((Path(__file__).parents[2] / "dags" / "plans" / "nightly_orders_report.json").read_text())["steps"]
CATALOG = "airflow_claude.examples.orders:catalog"
GOAL = "Report October revenue by region"


def test_plan_writes_a_file_the_factory_compiles(
    fake_claude: FakeClaude, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key")
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    out = tmp_path / "october_revenue.json"
    args = ["plan", "--goal", GOAL, "--catalog", CATALOG, "-o", str(out), "--base-url", fake_claude.url]
    assert main([*args, "--schedule", "0 3 * * *"]) == 0
    assert "6 steps, 1 attempt(s), 1 model call(s)" in capsys.readouterr().out
    result = load_plan_file(out, catalog)
    assert result.ok and result.plan is not None
    assert result.plan.id == "october_revenue" and result.plan.schedule == "0 3 * * *"
    assert result.plan.provenance.created_by == "claude"
    assert load_plan_dags(tmp_path, catalog)["october_revenue"].timetable.expression == "0 3 * * *"
    headers = fake_claude.message_requests()[0].headers
    assert headers.get("authorization") == "Bearer sk-test-key"


def test_recorded_exchange_replays_offline_without_a_key(
    fake_claude: FakeClaude, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    cassette = tmp_path / "october.cassette.json"
    live, replayed = tmp_path / "live", tmp_path / "replayed"
    live.mkdir(), replayed.mkdir()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-record-key")
    common = ["plan", "--goal", GOAL, "--catalog", CATALOG, "--plan-id", "october"]
    assert main([*common, "-o", str(live), "--base-url", fake_claude.url, "--record-to", str(cassette)]) == 0
    assert "sk-record-key" not in cassette.read_text()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    calls_before = len(fake_claude.requests)
    assert main([*common, "-o", str(replayed), "--replay", str(cassette)]) == 0
    assert len(fake_claude.requests) == calls_before  # the upstream was not contacted
    first = json.loads((live / "october.json").read_text())
    again = json.loads((replayed / "october.json").read_text())
    assert first["steps"] == again["steps"]


def test_refusal_exits_1_and_missing_key_exits_2(
    fake_claude: FakeClaude, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    out = str(tmp_path / "p.json")
    assert main(["plan", "--goal", GOAL, "--catalog", CATALOG, "-o", out]) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    fake_claude.reply_text("No.", stop_reason="refusal")
    assert main(["plan", "--goal", GOAL, "--catalog", CATALOG, "-o", out, "--base-url", fake_claude.url]) == 1
    assert "PlanRefused" in capsys.readouterr().err
    assert not Path(out).exists()
