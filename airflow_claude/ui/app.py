"""The plugin's FastAPI app, mounted by the api-server at ``/airflow-claude``: pages, JSON API, export, replay.

Every route resolves the user first (401 without a valid token) and asks Airflow's auth manager
before reading or triggering anything (403). Reads go through :mod:`airflow_claude.ui.store`;
the replay creates the DAG run with Airflow's own trigger code path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from airflow_claude.ui import access, page
from airflow_claude.ui.models import RunDetail

URL_PREFIX = "/airflow-claude"

User = Annotated[Any, Depends(access.current_user)]


class ReplayBody(BaseModel):
    """``POST /api/replay``: the run and plan hash to replay (or the plan itself), and where to."""

    model_config = ConfigDict(extra="forbid")

    source: dict[str, str] | None = None
    plan_hash: str
    plan: dict[str, Any] | None = None
    target_dag_id: str | None = None


@contextmanager
def _session() -> Iterator[Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        yield session


def _base(request: Request) -> str:
    """The app's mount path (``/airflow-claude`` under the api-server), for links that work in the iframe too."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def _detail_or_404(session: Any, dag_id: str, run_id: str) -> RunDetail:
    from airflow_claude.ui import store

    detail = store.run_detail(session, dag_id, run_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No run '{run_id}' of DAG '{dag_id}'")
    return detail


def create_app() -> FastAPI:
    app = FastAPI(title="airflow-claude", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def list_html(request: Request, user: User, dag_id: str | None = None) -> HTMLResponse:
        return HTMLResponse(page.list_page(_list(request, user, dag_id), _base(request), dag_id))

    @app.get("/api/runs")
    def list_json(request: Request, user: User, dag_id: str | None = None) -> dict[str, Any]:
        return {"runs": [r.model_dump(mode="json") for r in _list(request, user, dag_id)]}

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_html(request: Request, user: User, dag_id: str, run_id: str) -> HTMLResponse:
        access.require(access.auth_manager(request), user, "GET", dag_id)
        with _session() as session:
            detail = _detail_or_404(session, dag_id, run_id)
        return HTMLResponse(page.run_page(detail, _base(request)))

    @app.get("/api/runs/{dag_id}/{run_id}")
    def run_json(request: Request, user: User, dag_id: str, run_id: str) -> dict[str, Any]:
        access.require(access.auth_manager(request), user, "GET", dag_id)
        with _session() as session:
            return _detail_or_404(session, dag_id, run_id).model_dump(mode="json")

    @app.get("/api/runs/{dag_id}/{run_id}/export")
    def export_json(request: Request, user: User, dag_id: str, run_id: str) -> Response:
        from airflow_claude.ui import store
        from airflow_claude.ui.export import export_bundle
        from airflow_claude.ui.runs import build_detail

        access.require(access.auth_manager(request), user, "GET", dag_id)
        with _session() as session:
            data = store.load_run(session, dag_id, run_id)
            if data is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"No run '{run_id}' of DAG '{dag_id}'")
            bundle = export_bundle(data, build_detail(data))
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{dag_id}__{run_id}")[:150]
        return Response(
            json.dumps(bundle, indent=2, sort_keys=True, default=str),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}.airflow-claude.json"'},
        )

    @app.post("/api/replay")
    def replay(request: Request, user: User, body: ReplayBody) -> JSONResponse:
        from airflow_claude.ui.trigger import start_replay

        with _session() as session:
            answer = start_replay(
                session,
                access.auth_manager(request),
                user,
                body,
                triggered_from_ui=bool(request.headers.get("referer")),
            )
        answer["url"] = page.run_url(_base(request), answer["dag_id"], answer["run_id"])
        return JSONResponse(answer)

    return app


def _list(request: Request, user: Any, dag_id: str | None) -> list[Any]:
    from airflow_claude.ui import store

    allowed = access.readable_dag_ids(access.auth_manager(request), user)
    with _session() as session:
        return store.list_runs(session, allowed, dag_id)


app = create_app()
