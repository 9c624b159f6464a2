"""The plugin's HTML: escaped everywhere, the ids the tests rely on, the plan graph's layout."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ui_kit import HOSTILE, automation_run, compiled_run

from airflow_claude.ui.models import RunSummary, StepView
from airflow_claude.ui.page import list_page, plan_svg, run_page, run_url
from airflow_claude.ui.runs import RunData, build_detail


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v for k, v in attrs if k == "id" and v]
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)
            self._in_script = False


def parse(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


def test_a_hostile_goal_and_plan_text_are_escaped_on_both_pages() -> None:
    data = automation_run(goal=HOSTILE)
    data.run_id = 'manual__"><img src=x onerror=alert(2)>'
    detail = build_detail(data)
    page = run_page(detail, "/airflow-claude")
    listing = list_page([detail.summary()], "/airflow-claude")
    for html in (page, listing):
        assert HOSTILE not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "alert(1)" not in "".join(parse(page).scripts)  # the only script is ours, with no plan data in it


def test_the_run_page_has_every_element_the_tests_rely_on() -> None:
    page = run_page(build_detail(automation_run()), "/airflow-claude")
    ids = set(parse(page).ids)
    assert {"plan-graph", "steps", "cost-total", "calls", "version-chain", "compensation"} <= ids
    assert {"replay-button", "replay-result", "export-link"} <= ids
    rows = re.findall(r'<tr class="step" data-step-id="([^"]+)"', page)
    assert rows == ["extract", "summarise", "notify"] * 2
    assert 'class="attempts">3<' in page and 'class="idempotency-key mono">ik_1_notify<' in page
    assert 'class="ledger">started<' in page
    assert '<strong id="cost-total">$0.0400</strong>' in page
    assert 'href="/airflow-claude/api/runs/orders_pipeline/manual__2026-12-04T10%3A00%3A00%2B00%3A00/export"' in page
    assert 'data-url="/airflow-claude/api/replay"' in page


def test_a_compiled_plan_run_offers_the_button_and_the_cli_for_a_changed_plan_file() -> None:
    detail = build_detail(compiled_run(with_file=False))  # the DAG holds the plan: no file needed
    page = run_page(detail, "")
    ids = set(parse(page).ids)
    assert {"replay-button", "export-link", "replay-result", "plan-graph"} <= ids
    assert f'data-plan-hash="{detail.plan_hash}"' in page and 'data-dag-id="nightly_orders"' in page
    assert "airflow-claude replay nightly_orders scheduled__2026-12-04 --plans-dir DIR" in page


def test_a_page_follows_its_run_until_it_is_finished() -> None:
    data = automation_run()
    assert 'http-equiv="refresh"' not in run_page(build_detail(data), "")
    data.state = "running"
    assert '<meta http-equiv="refresh" content="10">' in run_page(build_detail(data), "")


def test_the_page_shows_the_runs_data_interval() -> None:
    data = compiled_run()
    data.data_interval = ("2026-12-03T00:00:00+00:00", "2026-12-04T00:00:00+00:00")
    page = run_page(build_detail(data), "")
    assert "<dt>Data interval</dt><dd>2026-12-03T00:00:00+00:00 to 2026-12-04T00:00:00+00:00</dd>" in page
    assert "Data interval" not in run_page(build_detail(compiled_run()), "")


def test_a_run_with_no_known_plan_offers_no_replay() -> None:
    data = compiled_run(with_file=False)
    data.xcoms.clear()
    data.dag_doc = None
    page = run_page(build_detail(data), "")
    assert "replay-button" not in set(parse(page).ids) and "export-link" in set(parse(page).ids)


def test_the_list_links_each_run_to_its_page() -> None:
    runs = [RunSummary(dag_id="d", run_id="manual__2026+00:00", kind="plan", cost_usd="0.5")]
    html = list_page(runs, "/airflow-claude", dag_id="d")
    assert re.findall(r'<tr class="run".*?<a class="run-link" href="([^"]+)"', html) == [
        run_url("/airflow-claude", "d", "manual__2026+00:00")
    ]
    assert run_url("/p", "d", "a/b+c") == "/p/runs/d/a%2Fb%2Bc"
    assert 'id="runs"' in html and 'id="no-runs"' not in html
    assert 'id="no-runs"' in list_page([], "")


def test_the_plan_graph_lays_steps_out_by_dependency_level() -> None:
    steps = [
        StepView(id="a", tool="t"),
        StepView(id="b", tool="t", depends_on=["a"], state="success"),
        StepView(id="c", tool="t", depends_on=["a"]),
        StepView(id="d", tool="t", depends_on=["b", "c"], state="failed"),
    ]
    svg = plan_svg(steps)
    xs = {sid: int(x) for sid, x in re.findall(r'data-step-id="(\w)"><title>[^<]*</title><rect x="(\d+)"', svg)}
    assert xs["a"] < xs["b"] == xs["c"] < xs["d"]
    assert svg.count('class="edge"') == 4
    assert 'fill="#fed7d7"' in svg  # the failed step


def test_a_cycle_still_draws_every_step() -> None:
    svg = plan_svg([StepView(id="a", tool="t", depends_on=["b"]), StepView(id="b", tool="t", depends_on=["a"])])
    assert 'data-step-id="a"' in svg and 'data-step-id="b"' in svg


def test_a_run_of_another_dag_says_it_is_not_a_claude_run() -> None:
    page = run_page(build_detail(RunData(dag_id="etl", run_id="r", state="success")), "")
    assert 'id="not-claude"' in page and 'id="steps"' not in page
