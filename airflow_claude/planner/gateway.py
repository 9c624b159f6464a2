"""``ModelGateway``: the one path from this package to Claude.

Every model call (the planner's plan and repair calls, the automation's review) goes through
:meth:`ModelGateway.call`, so the rules live in one place: the client and model come from the
Airflow ``anthropic`` connection (``AnthropicHook``), the input is counted and offered to a
guard (a run budget) before anything is spent, the request runs with the SDK's retries off and
bounded, capped in-process retries (``calls.py``) inside one ``chat <model>`` span
(``observability/tracing.py``), and its usage and cost are priced and logged as one
``model.call`` record. Errors are :class:`~airflow_claude.planner.errors.PlanningError`
subclasses whose ``retryable`` drives :data:`~airflow_claude.planner.retry.CLAUDE_RETRY_POLICY`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from airflow_claude.observability import tracing
from airflow_claude.observability.records import emit
from airflow_claude.planner.calls import CallPolicy, with_retries
from airflow_claude.planner.errors import ContextBudgetExceeded
from airflow_claude.planner.pricing import CallUsage, PriceTable

__all__ = ["DEFAULT_MODEL", "CallPolicy", "ModelGateway"]

#: The model of a gateway built from an API key alone (the CLI); a connection names its own.
DEFAULT_MODEL = "claude-sonnet-5-5"

#: The request keys the token-counting endpoint accepts (the rest of a request does not add input).
_COUNTED_KEYS = ("model", "system", "tools", "tool_choice", "messages", "thinking", "output_config", "cache_control")

log = logging.getLogger(__name__)


class ModelGateway:
    """The one path from this package to Claude.

    ``before_call(purpose, input_tokens, max_tokens)`` runs before each call and may refuse it by
    raising (the run budget raises ``BudgetExhausted``); the token count is only asked for when
    something reads it.
    """

    client: Any
    model: str

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        policy: CallPolicy | None = None,
        prices: PriceTable | None = None,
        logger: Any = None,
        before_call: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.policy = policy or CallPolicy()
        self.prices = prices or PriceTable()
        self.log = logger or log
        self.before_call = before_call

    @classmethod
    def from_connection(
        cls, conn_id: str = "anthropic_default", model: str | None = None, **kwargs: Any
    ) -> ModelGateway:
        """Client and model from an Airflow ``anthropic`` connection, through ``AnthropicHook``.

        The hook reads the key from the password, the base URL from the host and the default
        model from the extra; ``model`` overrides the connection's. Fetching the connection also
        registers its password with Airflow's secrets masker, so the key is masked everywhere.
        """
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        hook = AnthropicHook(conn_id=conn_id)
        return cls(hook.get_conn(), model or hook.default_model, **kwargs)

    def _client(self) -> Any:
        """The client with the SDK's own retries off: the retry rules are ours (``calls.py``).

        The SDK's own spans (one ``anthropic.messages.*`` span per HTTP attempt, under our ``chat``
        span) are kept to metadata: its content mode would export prompts unmasked, and the trace
        context is not sent to the API.
        """
        options: dict[str, Any] = {"max_retries": 0, "timeout": self.policy.timeout}
        if hasattr(self.client, "open_telemetry"):  # anthropic >= 2.16
            options["open_telemetry"] = {"propagation": False, "traces": {"content_mode": "metadata_only"}}
        return self.client.with_options(**options)

    def count_tokens(self, request: dict[str, Any]) -> int:
        """Input tokens ``request`` would use (a free endpoint), under the same retry rules as a call."""
        counted = {key: request[key] for key in _COUNTED_KEYS if key in request}
        counted.setdefault("model", self.model)
        result = with_retries(lambda: self._client().messages.count_tokens(**counted), self.policy)
        return int(result.input_tokens)

    def call(
        self,
        purpose: str,
        request: dict[str, Any],
        *,
        prompt_template: str,
        max_input_tokens: int | None = None,
        **record_fields: Any,
    ) -> tuple[Any, CallUsage]:
        """Count tokens, ask ``before_call(purpose, input_tokens, request['max_tokens'])`` (the run's budget
        guard may raise ``BudgetExhausted``), make the call with the retry rules, price it, emit the
        ``model.call`` record (``record_fields`` + ``duration_s`` + ``stop_reason`` + ``prompt_template``
        + usage) and return ``(message, usage)``.

        ``max_input_tokens`` refuses a prompt over that many input tokens with ``ContextBudgetExceeded``
        before any model call. ``request`` holds the Messages API arguments; ``model`` defaults to the
        gateway's.
        """
        request = {"model": self.model, **request}
        if self.before_call is not None or max_input_tokens is not None:
            counted = self.count_tokens(request)
            if max_input_tokens is not None and counted > max_input_tokens:
                raise ContextBudgetExceeded(counted, max_input_tokens)
            if self.before_call is not None:
                self.before_call(purpose, counted, request["max_tokens"])
        started = time.monotonic()
        with tracing.model_call_span(purpose, request, plan_id=record_fields.get("plan_id")) as span:
            message = with_retries(lambda: self._client().messages.create(**request), self.policy)
            usage = self.prices.call_usage(
                purpose, request["model"], getattr(message, "_request_id", None), message.usage
            )
            tracing.record_model_response(span, message, usage)
        record = {
            **record_fields,
            "duration_s": round(time.monotonic() - started, 3),
            "stop_reason": message.stop_reason,
            "prompt_template": prompt_template,
            **usage.to_dict(),
        }
        emit(self.log, "model.call", **record)
        return message, usage
