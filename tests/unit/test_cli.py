"""The airflow-claude command line, run in-process through main() (and once as the console script)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from shop import build_plan, build_step, diamond

from airflow_claude.cli import main

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "airflow_claude" / "plan" / "plan.schema.json"
WritePlan = Callable[..., Path]
Capsys = pytest.CaptureFixture[str]

CATALOG_MODULE = """
from shop import CATALOG as catalog  # the DAG author's module, re-exporting the test catalog

answer = 42
"""


@pytest.fixture
def catalog_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A catalog module on sys.path, as a DAG author's project would have one."""
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "shop_catalog.py").write_text(CATALOG_MODULE)
    (code_dir / "broken_catalog.py").write_text("raise RuntimeError('database is down')\n")
    monkeypatch.syspath_prepend(str(code_dir))
    for name in ("shop_catalog", "broken_catalog"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delenv("AIRFLOW_CLAUDE_CATALOG", raising=False)
    return "shop_catalog:catalog"


@pytest.fixture
def plans(tmp_path: Path, write_plan: WritePlan) -> Path:
    """A directory with one good plan, one bad plan and a file that is not JSON."""
    folder = tmp_path / "plans"
    write_plan(diamond(), directory=folder)
    write_plan(build_plan(build_step("load", "load_order", {}), id="broken"), directory=folder)
    (folder / "README.md").write_text("not a plan")
    return folder


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- validate ----------------------------------------------------------------------------------


def test_validate_valid_plan(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    code, out, err = run(capsys, "validate", str(write_plan(diamond())), "--catalog", catalog_spec)
    assert code == 0
    assert out == "1 plan checked, 0 invalid\n"
    assert err == ""


def test_validate_invalid_plan_text(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    path = write_plan(build_plan(build_step("load", "load_order", {}), build_step("b", depends_on=["b"])))
    code, out, _ = run(capsys, "validate", str(path), "--catalog", catalog_spec)
    lines = out.splitlines()
    assert code == 1
    assert len(lines) == 3
    assert lines[0].startswith(f"{path} plan=daily_orders step=")
    assert any("[unknown_tool]" in line and "did you mean 'load_orders'?" in line for line in lines)
    assert any("[self_dependency]" in line and "step=b" in line for line in lines)
    assert lines[-1] == "1 plan checked, 1 invalid"


def test_validate_json_format(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    path = write_plan(build_plan(build_step("load", "load_order", {})))
    code, out, _ = run(capsys, "validate", str(path), "--catalog", catalog_spec, "--format", "json")
    assert code == 1
    [error] = json.loads(out)
    assert list(error) == ["file", "plan_id", "step_id", "path", "code", "message", "hint"]
    assert error == {
        "file": str(path),
        "plan_id": "daily_orders",
        "step_id": "load",
        "path": "$.steps[0].tool",
        "code": "unknown_tool",
        "message": "tool 'load_order' is not in the catalog 'shop'",
        "hint": "did you mean 'load_orders'?",
    }


def test_validate_json_format_empty_when_valid(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    code, out, _ = run(capsys, "validate", str(write_plan(diamond())), "--catalog", catalog_spec, "--format", "json")
    assert code == 0
    assert json.loads(out) == []


def test_validate_directory(capsys: Capsys, catalog_spec: str, plans: Path) -> None:
    code, out, _ = run(capsys, "validate", str(plans), "--catalog", catalog_spec)
    lines = out.splitlines()
    assert code == 1
    assert lines[-1] == "2 plans checked, 1 invalid"
    assert [line for line in lines[:-1] if "broken.json" not in line] == []
    assert "[unknown_tool]" in lines[0]


def test_validate_directory_json_reports_only_the_bad_plan(capsys: Capsys, catalog_spec: str, plans: Path) -> None:
    code, out, _ = run(capsys, "validate", str(plans), "--catalog", catalog_spec, "--format", "json")
    assert code == 1
    assert {(e["file"], e["code"]) for e in json.loads(out)} == {(str(plans / "broken.json"), "unknown_tool")}


def test_validate_files_and_directories_together_in_sorted_order(
    capsys: Capsys, catalog_spec: str, plans: Path, write_plan: WritePlan, tmp_path: Path
) -> None:
    write_plan(build_plan(build_step("x", "nope", {}), id="aaa"), directory=plans)
    single = write_plan(build_plan(schedule="whenever"), directory=tmp_path / "single")
    code, out, _ = run(capsys, "validate", str(plans), str(single), "--catalog", catalog_spec, "--format", "json")
    files = [Path(e["file"]).name for e in json.loads(out)]
    assert code == 1
    assert files == ["aaa.json", "broken.json", "daily_orders.json"]


def test_validate_catalog_from_environment(
    capsys: Capsys, catalog_spec: str, write_plan: WritePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CLAUDE_CATALOG", catalog_spec)
    code, out, _ = run(capsys, "validate", str(write_plan(diamond())))
    assert (code, out) == (0, "1 plan checked, 0 invalid\n")


def test_validate_max_steps(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    path = write_plan(diamond())
    code, out, _ = run(capsys, "validate", str(path), "--catalog", catalog_spec, "--max-steps", "3")
    assert code == 1
    assert "[too_many_steps] the plan has 4 steps, over the limit of 3" in out


def test_validate_reports_file_level_problems(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    path = write_plan(b'{"id": "a", "id": "b"}', name="dup")
    code, out, _ = run(capsys, "validate", str(path), "--catalog", catalog_spec, "--format", "json")
    assert code == 1
    assert [e["code"] for e in json.loads(out)] == ["duplicate_json_key"]


def test_validate_empty_directory_warns(capsys: Capsys, catalog_spec: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "validate", str(tmp_path / "empty"), "--catalog", catalog_spec)
    assert code == 0
    assert out == "0 plans checked, 0 invalid\n"
    assert "no *.json plan files" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "{plan}"], "no catalog: pass --catalog MODULE:ATTR or set AIRFLOW_CLAUDE_CATALOG"),
        (["validate", "{plan}", "--catalog", "shop_catalog"], "must look like 'package.module:CATALOG'"),
        (["validate", "{plan}", "--catalog", "no_such_module:catalog"], "No module named 'no_such_module'"),
        (["validate", "{plan}", "--catalog", "shop_catalog:nope"], "has no attribute 'nope'"),
        (["validate", "{plan}", "--catalog", "shop_catalog:answer"], "is not an airflow_claude Catalog (it is a int)"),
        (["validate", "{plan}", "--catalog", "broken_catalog:catalog"], "RuntimeError: database is down"),
        (["validate", "{missing}", "--catalog", "shop_catalog:catalog"], "no such file or directory"),
        (["validate", "{plan}", "--catalog", "shop_catalog:catalog", "--max-steps", "0"], "must be at least 1"),
        (["validate", "{plan}", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["validate", "--catalog", "shop_catalog:catalog"], "the following arguments are required: PATH"),
        (["validate", "{plan}", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["render"], "the following arguments are required: PLAN"),
        (["render", "{missing}"], "no such file"),
        (["lint"], "invalid choice: 'lint'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    capsys: Capsys, catalog_spec: str, write_plan: WritePlan, tmp_path: Path, argv: list[str], message: str
) -> None:
    plan = write_plan(diamond())
    argv = [arg.format(plan=plan, missing=tmp_path / "missing.json") for arg in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert out == ""


def test_help_and_version_exit_0(capsys: Capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out.split()[0]) == (0, "airflow-claude")
    code, out, _ = run(capsys, "validate", "--help")
    assert code == 0
    assert "--catalog MODULE:ATTR" in out


# -- render ------------------------------------------------------------------------------------


def test_render_text(capsys: Capsys, write_plan: WritePlan) -> None:
    code, out, _ = run(capsys, "render", str(write_plan(diamond())))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "plan diamond: 4 steps"
    ordered = [re.match(r"\s+\d\. (\w+)\s+\[(\w+)\](?:  after: (.*))?$", line) for line in lines[1:5]]
    assert [(m.group(1), m.group(2), m.group(3)) for m in ordered if m] == [
        ("load", "load_orders", None),
        ("summary", "summarize", "load"),
        ("sql", "run_sql", "load"),
        ("announce", "notify", "summary, sql"),
    ]
    assert lines[5:] == [
        "edges:",
        "  load -> summary",
        "  load -> sql",
        "  summary -> announce",
        "  sql -> announce",
    ]


def test_render_text_orders_by_dependencies_not_file_order(capsys: Capsys, write_plan: WritePlan) -> None:
    plan = build_plan(
        build_step("last", depends_on=["middle"]), build_step("middle", depends_on=["first"]), build_step("first")
    )
    code, out, _ = run(capsys, "render", str(write_plan(plan)))
    assert code == 0
    ids = [line.split()[1] for line in out.splitlines()[1:4]]
    assert ids == ["first", "middle", "last"]


def test_render_mermaid(capsys: Capsys, write_plan: WritePlan) -> None:
    code, out, _ = run(capsys, "render", str(write_plan(diamond())), "--format", "mermaid")
    assert code == 0
    assert out.splitlines() == [
        "flowchart TD",
        '    s0["load<br/>load_orders"]',
        '    s1["summary<br/>summarize"]',
        '    s2["sql<br/>run_sql"]',
        '    s3["announce<br/>notify"]',
        "    s0 --> s1",
        "    s0 --> s2",
        "    s1 --> s3",
        "    s2 --> s3",
    ]


def test_render_both(capsys: Capsys, write_plan: WritePlan) -> None:
    code, out, _ = run(capsys, "render", str(write_plan(diamond())), "--format", "both")
    text, mermaid = out.split("\n\n")
    assert code == 0
    assert text.startswith("plan diamond: 4 steps")
    assert mermaid.startswith("flowchart TD")


def test_render_mermaid_escapes_descriptions(capsys: Capsys, write_plan: WritePlan) -> None:
    nasty = 'x"] --> evil["<script>alert(1)</script> #1 & `code`\nclick s0 call'
    plan = diamond()
    plan["steps"][0]["description"] = nasty
    code, out, _ = run(capsys, "render", str(write_plan(plan)), "--format", "mermaid")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 + 4 + 4  # header, one line per node, one per edge: nothing injected
    node = re.compile(r'^    s\d+\["[^"\n]*"\]$')
    assert all(node.match(line) for line in lines[1:5]), lines
    assert "<script>" not in out and '"]' not in lines[1][:-2]
    assert "#34;" in lines[1] and "#60;script#62;" in lines[1] and "#35;1 #38;" in lines[1]


def test_render_long_description_is_shortened(capsys: Capsys, write_plan: WritePlan) -> None:
    plan = diamond()
    plan["steps"][0]["description"] = "word " * 100
    code, out, _ = run(capsys, "render", str(write_plan(plan)), "--format", "mermaid")
    assert code == 0
    label = out.splitlines()[1]
    assert "<i>" in label and len(label) < 120


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (build_plan(build_step("a", depends_on=["b"]), build_step("b", depends_on=["a"])), "dependency cycle"),
        (build_plan(build_step("a", depends_on=["a"])), "dependency cycle"),
        (build_plan(build_step("a", depends_on=["nope"])), "unknown step 'nope'"),
        (build_plan(build_step("a"), build_step("a")), "not unique"),
        (build_plan(build_step("a/../b")), "String should match pattern"),
        ({**build_plan(), "colour": "blue"}, "Extra inputs are not permitted"),
        ("{not json", "malformed JSON"),
    ],
)
def test_render_rejects_broken_plans(capsys: Capsys, write_plan: WritePlan, plan: Any, message: str) -> None:
    code, out, err = run(capsys, "render", str(write_plan(plan, name="p")))
    assert code == 1
    assert out == ""
    assert message in err


def test_render_with_catalog_validates_fully(capsys: Capsys, catalog_spec: str, write_plan: WritePlan) -> None:
    bad = write_plan(build_plan(build_step("load", "load_order", {})), name="draft")
    code, out, err = run(capsys, "render", str(bad), "--catalog", catalog_spec)
    assert (code, out) == (1, "")
    assert "[unknown_tool]" in err
    assert "file_name_mismatch" not in err  # a draft file may have any name

    code, out, _ = run(capsys, "render", str(write_plan(diamond(), name="draft2")), "--catalog", catalog_spec)
    assert code == 0
    assert out.startswith("plan diamond: 4 steps")


# -- schema ------------------------------------------------------------------------------------


def test_schema_matches_the_shipped_file_byte_for_byte(capsys: Capsys) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert out == SCHEMA_FILE.read_text(encoding="utf-8"), (
        "regenerate with: airflow-claude schema > airflow_claude/plan/plan.schema.json"
    )


# -- the shipped example and the installed console script ------------------------------------


def test_shipped_example_plans_are_valid(capsys: Capsys) -> None:
    plans = REPO / "dags" / "plans"
    if not plans.is_dir():
        pytest.skip("no example plans in this checkout")
    code, out, _ = run(capsys, "validate", str(plans), "--catalog", "airflow_claude.examples.orders:catalog")
    assert code == 0, out
    assert out.endswith(" invalid\n") and not out.startswith("0 plans")


def test_console_script(tmp_path: Path, plans: Path) -> None:
    script = Path(sys.executable).parent / "airflow-claude"
    if not script.exists():
        pytest.skip("package not installed: pip install -e . --no-deps")
    code_dir = tmp_path / "code"
    code_dir.mkdir(exist_ok=True)
    (code_dir / "shop_catalog.py").write_text(CATALOG_MODULE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(code_dir), str(Path(__file__).parent)]),
        "AIRFLOW_CLAUDE_CATALOG": "shop_catalog:catalog",
    }
    done = subprocess.run(
        [str(script), "validate", str(plans), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert [e["code"] for e in json.loads(done.stdout)] == ["unknown_tool"]

    schema = subprocess.run([str(script), "schema"], capture_output=True, text=True, timeout=120, check=False)
    assert schema.returncode == 0
    assert schema.stdout == SCHEMA_FILE.read_text(encoding="utf-8")


def test_diff_names_each_change_and_exits_1_only_when_plans_differ(
    capsys: Capsys, tmp_path: Path, write_plan: WritePlan
) -> None:
    old = write_plan(diamond(), name="old")
    changed = diamond()
    changed["steps"][3]["args"]["channel"] = "#finance"
    new = write_plan(changed, name="new")
    code, out, _ = run(capsys, "diff", str(old), str(new))
    assert code == 1, out
    assert 'changed step announce: args.channel: "#orders" -> "#finance"' in out
    assert out.count("plan diamond sha256:") == 2
    code, out, _ = run(capsys, "diff", str(old), str(old))
    assert code == 0 and "no change in what runs" in out
    code, _, err = run(capsys, "diff", str(old), str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err
