"""`fulfillment orders search` stays usable on an 80-column terminal: ids are never cut."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from cli.orders import search_table
from cli.tables import timeline_table
from tests.console.fakes import order_with
from tests.factories import captured, placed


def _render(order_ids: list[str], width: int) -> str:
    orders = []
    for order_id in order_ids:
        order = order_with([placed(order_id), captured(order_id, "10.00")], order_id)
        order.placed_at = datetime(2026, 11, 22, 20, 31, 5, tzinfo=UTC)
        orders.append(order)
    console = Console(width=width, record=True)
    console.print(search_table(orders))
    return console.export_text()


def test_orders_search_never_cuts_the_order_id_at_80_columns() -> None:
    ids = ["acc-31c9e2-0014", "ord-1a2b3c-0001", "shop-7f3e9c1d2b-000123"]
    text = _render(ids, 80)
    lines = text.splitlines()
    for order_id in ids:
        assert any(order_id in line for line in lines), text
    assert "…" not in text
    assert max(len(line) for line in lines) <= 80
    # The rest is all there too, stacked: number, payment status and total.
    assert "#1001" in text and "partially_captured" in text and "20.00 USD" in text


def test_order_show_keeps_a_long_event_id_whole_on_the_timeline() -> None:
    long_id = "evt-" + "9" * 60  # ids may be up to 128 characters
    order = order_with([placed("ord-t", event_id=long_id)], "ord-t")
    console = Console(width=120, record=True)
    console.print(timeline_table(order, "Timeline"))
    text = console.export_text()
    assert long_id in text, text
