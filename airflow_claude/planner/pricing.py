"""Tokens and money per model call. Money is ``Decimal``, never float."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. Cache writes and reads have their own rates."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal


def _price(input_usd: str, output_usd: str) -> ModelPrice:
    base = Decimal(input_usd)
    return ModelPrice(base, Decimal(output_usd), base * Decimal("1.25"), base * Decimal("0.1"))


#: List prices in USD per million tokens by model-name prefix (the longest prefix wins). These are
#: defaults for budgeting, not a billing source: pass your own ``PriceTable`` when prices change.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-opus-4-0": _price("15", "75"),
    "claude-opus-4-1": _price("15", "75"),
    "claude-opus-": _price("5", "25"),
    "claude-sonnet-": _price("3", "15"),
    "claude-haiku-": _price("1", "5"),
}


@dataclass(frozen=True)
class CallUsage:
    """One model call: its request id, token counts and cost."""

    purpose: str
    model: str
    request_id: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = str(self.cost_usd)
        return data


class PriceTable:
    """Looks a model up by the longest matching prefix; unknown models cost the fallback price."""

    def __init__(self, prices: dict[str, ModelPrice] | None = None, fallback: ModelPrice | None = None) -> None:
        self.prices = dict(prices or DEFAULT_PRICES)
        self.fallback = fallback or _price("15", "75")  # pessimistic: budgets must not be undercounted

    def price(self, model: str) -> ModelPrice:
        matches = [prefix for prefix in self.prices if model.startswith(prefix)]
        return self.prices[max(matches, key=len)] if matches else self.fallback

    def cost(self, model: str, usage: Any) -> Decimal:
        price = self.price(model)
        total = (
            price.input * getattr(usage, "input_tokens", 0)
            + price.output * getattr(usage, "output_tokens", 0)
            + price.cache_write * (getattr(usage, "cache_creation_input_tokens", 0) or 0)
            + price.cache_read * (getattr(usage, "cache_read_input_tokens", 0) or 0)
        )
        return (total / MILLION).quantize(Decimal("0.000001"))

    def call_usage(self, purpose: str, model: str, request_id: str | None, usage: Any) -> CallUsage:
        return CallUsage(
            purpose=purpose,
            model=model,
            request_id=request_id,
            input_tokens=getattr(usage, "input_tokens", 0),
            output_tokens=getattr(usage, "output_tokens", 0),
            cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
            cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
            cost_usd=self.cost(model, usage),
        )


def total_usage(calls: list[CallUsage]) -> dict[str, Any]:
    """Sum of a list of calls, in the plan provenance's ``usage`` shape plus ``cost_usd``."""
    return {
        "input_tokens": sum(c.input_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
        "cache_creation_input_tokens": sum(c.cache_creation_input_tokens for c in calls),
        "cache_read_input_tokens": sum(c.cache_read_input_tokens for c in calls),
        "cost_usd": str(sum((c.cost_usd for c in calls), Decimal(0))),
        "calls": len(calls),
    }
