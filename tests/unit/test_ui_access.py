"""The plugin's auth, with a small fake auth manager: 401 without a valid token, 403 without permission."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_claude.ui import access
from airflow_claude.ui.app import create_app


class User:
    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role

    def get_name(self) -> str:
        return self.name


class FakeAuthManager:
    """Tokens ``admin``/``viewer``; a viewer reads the DAG ``open`` only and triggers nothing."""

    users = {"admin": User("admin", "admin"), "viewer": User("viewer", "viewer")}

    async def get_user_from_token(self, token: str) -> User:
        if token not in self.users:
            raise ValueError("bad token")
        return self.users[token]

    def is_authorized_dag(self, *, method: str, user: User, access_entity: Any = None, details: Any = None) -> bool:
        if user.role == "admin":
            return True
        return method == "GET" and details is not None and details.id == "open"

    def get_authorized_dag_ids(self, *, user: User, method: str = "GET") -> set[str]:
        return {"open", "closed"} if user.role == "admin" else {"open"}


@pytest.fixture
def client() -> TestClient:
    app = create_app()
    app.state.auth_manager = FakeAuthManager()
    return TestClient(app)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/runs"),
        ("GET", "/runs/open/r1"),
        ("GET", "/api/runs/open/r1"),
        ("GET", "/api/runs/open/r1/export"),
        ("POST", "/api/replay"),
    ],
)
def test_every_route_answers_401_without_a_valid_token(client: TestClient, method: str, path: str) -> None:
    body = {"plan_hash": "sha256:x", "source": {"dag_id": "open", "run_id": "r1"}}
    assert client.request(method, path, json=body).status_code == 401
    assert client.request(method, path, json=body, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.request(method, path, json=body, cookies={"_token": "forged"}).status_code == 401


@pytest.mark.parametrize("path", ["/runs/closed/r1", "/api/runs/closed/r1", "/api/runs/closed/r1/export"])
def test_a_dag_the_user_cannot_read_is_403(client: TestClient, path: str) -> None:
    assert client.get(path, headers={"Authorization": "Bearer viewer"}).status_code == 403


def test_a_viewer_may_not_replay(client: TestClient) -> None:
    body = {"plan_hash": "sha256:x", "source": {"dag_id": "open", "run_id": "r1"}, "target_dag_id": "open"}
    resp = client.post("/api/replay", json=body, cookies={"_token": "viewer"})
    assert resp.status_code == 403, resp.text


def test_the_list_reads_only_dags_the_user_may_read(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[set[str]] = []

    def list_runs(session: Any, allowed: set[str], dag_id: str | None = None) -> list[Any]:
        asked.append(allowed)
        return []

    monkeypatch.setattr("airflow_claude.ui.store.list_runs", list_runs)
    monkeypatch.setattr("airflow_claude.ui.app._session", _no_session)
    assert client.get("/api/runs", headers={"Authorization": "Bearer viewer"}).json() == {"runs": []}
    assert client.get("/", cookies={"_token": "admin"}).status_code == 200
    assert asked == [{"open"}, {"open", "closed"}]


class _no_session:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_bearer_token_wins_over_the_cookie() -> None:
    class Request:
        headers = {"authorization": "Bearer from-header"}
        cookies = {"_token": "from-cookie"}

    assert access.token_of(Request()) == "from-header"  # type: ignore[arg-type]
    Request.headers = {}
    assert access.token_of(Request()) == "from-cookie"  # type: ignore[arg-type]
