"""Who is asking, and may they: the plugin enforces Airflow's auth manager on every route itself.

Airflow adds no auth to a plugin's FastAPI app. The user comes from ``Authorization: Bearer`` or
the Airflow UI's ``_token`` cookie, checked by the configured auth manager; no token or a bad
one is 401. Reading a run needs GET on the DAG's runs; a replay needs POST on the target DAG's
runs (and GET on the source): else 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status

#: The Airflow UI's JWT cookie (``airflow.api_fastapi.auth.managers.base_auth_manager``).
COOKIE_NAME = "_token"


def auth_manager(request: Request) -> Any:
    """The auth manager: the one a test put on the plugin app's state, else the api-server's."""
    manager = getattr(request.app.state, "auth_manager", None)
    if manager is not None:
        return manager
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def token_of(request: Request) -> str | None:
    """The bearer token when one is sent (it wins, as in Airflow's ``get_user``), else the UI cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME) or None


async def current_user(request: Request) -> Any:
    """FastAPI dependency: the authenticated user, or 401."""
    token = token_of(request)
    if token is None:
        trusted = _user_from_middleware(request)
        if trusted is not None:
            return trusted
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await auth_manager(request).get_user_from_token(token)
    except Exception:  # expired, badly signed, revoked, unknown user: all the same to a caller
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
        ) from None


def _user_from_middleware(request: Request) -> Any:
    """A user Airflow's own JWT refresh middleware resolved for this request (its trust marker set)."""
    try:
        from airflow.api_fastapi.core_api.security import USER_INJECTED_BY_TRUSTED_MIDDLEWARE
    except ImportError:  # pragma: no cover - older Airflow
        return None
    user = getattr(request.state, "user", None)
    marker = getattr(request.state, "user_authenticated_via", None)
    return user if user is not None and marker is USER_INJECTED_BY_TRUSTED_MIDDLEWARE else None


def _team(dag_id: str) -> str | None:
    try:
        from airflow.models.dag import DagModel

        return DagModel.get_team_name(dag_id)
    except Exception:  # no DB here (tests) or no teams: the DAG belongs to no team
        return None


def can(manager: Any, user: Any, method: str, dag_id: str) -> bool:
    """Whether ``user`` may ``method`` (GET: read, POST: trigger) the runs of ``dag_id``."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        manager.is_authorized_dag(
            method=method,
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id, team_name=_team(dag_id)),
            user=user,
        )
    )


def require(manager: Any, user: Any, method: str, dag_id: str) -> None:
    """403 unless ``user`` may ``method`` the runs of ``dag_id``."""
    if not can(manager, user, method, dag_id):
        action = "read" if method == "GET" else "trigger"
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not {action} runs of DAG '{dag_id}'")


def readable_dag_ids(manager: Any, user: Any) -> set[str]:
    """The DAGs whose runs ``user`` may read: nothing of the others reaches the list."""
    return set(manager.get_authorized_dag_ids(user=user, method="GET"))
