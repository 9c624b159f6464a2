"""What the harness raises: the instance failed, or its REST API answered unexpectedly."""

from __future__ import annotations


class AirflowInstanceError(RuntimeError):
    """The Airflow instance failed to start, died, or did not reach a state in time."""


class AirflowApiError(AirflowInstanceError):
    """The Airflow REST API answered with an unexpected status code."""

    def __init__(self, method: str, url: str, status_code: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status_code}: {body[:2000]}")
        self.method = method
        self.url = url
        self.status_code = status_code
        self.body = body
