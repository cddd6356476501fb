"""Estimated cost of Bedrock usage, from the price table in core/prices.json.

The table is configuration, not truth: AWS changes prices, and what an account pays depends on
discounts this app cannot see. So every figure derived from it is shown as an estimate, each entry
carries the date it was checked and its source, and a model with no usable entry simply has no
cost (the page then shows its tokens alone). A bad entry is logged and skipped, never raised: a
typo in a price must not take the chat down.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.messages import Usage

logger = logging.getLogger(__name__)

PRICE_TABLE = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class Price:
    """On-demand price of one model, in the table's currency per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float
    checked: str
    source: str

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input_per_1k + usage.output_tokens * self.output_per_1k
        ) / 1000


@dataclass(frozen=True)
class PriceTable:
    currency: str
    prices: Mapping[str, Price]

    def cost(self, usage: Usage | None, model_id: str | None) -> float | None:
        """Estimated cost of one reply, or None when it cannot be priced honestly: no usage, the
        echo model's estimated tokens (nothing was billed), or no price for the model."""
        if usage is None or usage.source != "bedrock" or model_id is None:
            return None
        price = self.prices.get(model_id)
        return None if price is None else price.cost(usage)

    def total(self, replies: Iterable[tuple[Usage | None, str | None]]) -> float | None:
        """Sum of the replies that have a cost; None when none has (so "no cost" stays visible)."""
        costs = [c for usage, model in replies if (c := self.cost(usage, model)) is not None]
        return sum(costs) if costs else None


def _price(name: str, entry: object) -> Price | None:
    if not isinstance(entry, dict):
        logger.warning("price table: %s is not an object; ignored", name)
        return None
    rates = [entry.get("input_per_1k"), entry.get("output_per_1k")]
    texts = [entry.get("checked"), entry.get("source")]
    numbers_ok = all(
        type(v) in (int, float) and math.isfinite(v) and v >= 0 for v in rates if v is not None
    )
    if None in rates or not numbers_ok or not all(isinstance(t, str) and t for t in texts):
        logger.warning(
            "price table: %s needs non-negative input_per_1k and output_per_1k numbers and "
            "checked and source texts; ignored",
            name,
        )
        return None
    return Price(float(rates[0]), float(rates[1]), str(texts[0]), str(texts[1]))


def load_price_table(path: Path = PRICE_TABLE) -> PriceTable:
    """The table at ``path``; unreadable or malformed parts are logged and left out."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        logger.warning("price table %s unusable (%s): costs are not shown", path.name, error)
        return PriceTable("USD", {})
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        logger.warning("price table %s has no models object: costs are not shown", path.name)
        return PriceTable("USD", {})
    currency = data.get("currency") if isinstance(data.get("currency"), str) else "USD"
    prices = {name: p for name, e in data["models"].items() if (p := _price(name, e)) is not None}
    return PriceTable(currency, prices)


def format_cost(cost: float | None, currency: str) -> str:
    """``≈ 0.0123 USD``: four decimals, because one reply of a small model costs fractions of a
    cent; an empty string when there is no cost to show."""
    if cost is None:
        return ""
    return f"≈ {cost:.4f} {currency}"
