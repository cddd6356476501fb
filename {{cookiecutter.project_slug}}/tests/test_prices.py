"""The price table: costs are estimates from a dated, sourced table; anything wrong in it means a
reply shows its tokens without a cost, never an error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.messages import Usage
from core.prices import PRICE_TABLE, PriceTable, format_cost, load_price_table

MODEL = "us.amazon.nova-lite-v1:0"


def test_the_shipped_table_prices_the_default_us_models_with_date_and_source() -> None:
    table = load_price_table()
    assert table.currency == "USD"
    assert set(table.prices) == set(json.loads(PRICE_TABLE.read_text())["models"])
    for price in table.prices.values():
        assert price.source.startswith("https://aws.amazon.com/bedrock/pricing/")
        assert len(price.checked) == 10  # an ISO date
    # 1,000 input and 1,000 output tokens of Nova Lite: 0.00006 + 0.00024 USD.
    assert table.cost(Usage(1000, 1000), MODEL) == pytest.approx(0.0003)


def test_estimates_and_unknown_models_have_no_cost() -> None:
    table = load_price_table()
    assert table.cost(Usage(1000, 1000, source="estimate"), MODEL) is None
    assert table.cost(Usage(1000, 1000), "eu.unknown.model-v1:0") is None
    assert table.cost(None, MODEL) is None
    assert table.total([(None, MODEL), (Usage(1, 1, source="estimate"), MODEL)]) is None
    assert format_cost(None, "USD") == ""
    assert format_cost(0.0003, "USD") == "≈ 0.0003 USD"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"models": []}),
        json.dumps({"models": {MODEL: {"input_per_1k": "0.1", "output_per_1k": 1}}}),
        json.dumps({"models": {MODEL: {"input_per_1k": -1, "output_per_1k": 1}}}),
        json.dumps({"models": {MODEL: {"input_per_1k": 1, "output_per_1k": 1}}}),  # no source
    ],
)
def test_a_bad_table_or_entry_prices_nothing_and_raises_nothing(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    table = load_price_table(path)
    assert isinstance(table, PriceTable)
    assert table.cost(Usage(10, 10), MODEL) is None


def test_a_missing_table_prices_nothing(tmp_path: Path) -> None:
    assert load_price_table(tmp_path / "absent.json").prices == {}


def test_one_bad_entry_leaves_the_good_ones(tmp_path: Path) -> None:
    good = {"input_per_1k": 1, "output_per_1k": 2, "checked": "2026-11-30", "source": "test"}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {MODEL: good, "x.y.z": {"input_per_1k": None}}}))
    assert set(load_price_table(path).prices) == {MODEL}


def test_the_readme_cost_of_1000_turns_follows_the_price_table() -> None:
    """README, "What it costs per 1,000 turns": a row per priced model, computed from the table
    for the turn it assumes (1,500 input and 300 output tokens)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "an average turn of 1,500 input and 300 output tokens" in readme
    for model, price in load_price_table().prices.items():
        row = re.search(
            rf"^\| `{re.escape(model)}` \| ([\d.]+) / ([\d.]+) \| ([\d.]+) \|$", readme, re.M
        )
        assert row is not None, f"README has no cost row for {model}"
        per_million_in, per_million_out, per_thousand_turns = (float(g) for g in row.groups())
        assert per_million_in == pytest.approx(price.input_per_1k * 1000)
        assert per_million_out == pytest.approx(price.output_per_1k * 1000)
        assert per_thousand_turns == round(1000 * price.cost(Usage(1500, 300)), 2)
