"""`order show` and `orders search` after the fulfillment (contract 1.1), on an 80-column terminal."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest

from schemas.names import DeliveryStatus, OrderStatus
from tests.e2e.harness import Harness, bounded
from tests.e2e.test_after_fulfillment import SHIPMENT, fulfillment, report, shipped, tracking
from tests.e2e.test_cli import FULFILLMENT
from tests.e2e.test_contract_rules import paid, placed, request, send_all
from tests.factories import T0, line

pytestmark = pytest.mark.e2e
WIDTH = 80
# Long enough that a squeezed column would have to cut it.
ORDER_ID = "ord-shipped-with-a-rather-long-id-0001"
LINK = "https://www.dhl.com/track?awb=AWB-2"


def narrow(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    """A command as a person on an 80-column terminal runs it."""
    return subprocess.run(
        [FULFILLMENT, *args],
        env=harness.worker_env() | {"COLUMNS": str(WIDTH)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def found_ids(harness: Harness, *args: str) -> list[str]:
    result = narrow(harness, "orders", "search", "--json", *args)
    assert result.returncode == 0, result.stderr
    return sorted(json.loads(line)["_id"] for line in result.stdout.splitlines())


@bounded(120)
async def test_order_show_lists_each_shipment_with_tracking_history_holds_and_delivery_status(
    harness: Harness,
) -> None:
    # Requested before the order exists: held for the order, then for payment, then carried out.
    await send_all(harness, request(ORDER_ID, "f1", shipment=SHIPMENT))
    await harness.settled(ORDER_ID, lambda o: len(fulfillment(o).holds) == 1)
    await send_all(harness, placed(ORDER_ID))
    await harness.settled(ORDER_ID, lambda o: len(fulfillment(o).holds) == 2)
    await send_all(harness, paid(ORDER_ID))
    await send_all(
        harness,
        tracking(ORDER_ID, tracking_number="AWB-2", tracking_url=LINK),
        # Reports out of order: the later scan first.
        report(ORDER_ID, "in_transit", 5, location="Memphis [hub 7]"),
        report(ORDER_ID, "handed_over", 1, note="picked up by driver 42"),
    )
    await harness.settled(ORDER_ID, lambda o: len(fulfillment(o).shipment_events) == 2)

    shown = narrow(harness, "order", "show", ORDER_ID)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, text
    assert "…" not in text
    assert any(ORDER_ID in line for line in lines), text
    assert "delivery none" in text
    assert "Shipment f1 (completed): DHL AWB-2, in_transit" in text
    assert f"tracking link {LINK}" in text
    handed_over = row(lines, (T0 + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))
    in_transit = row(lines, (T0 + timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S"))
    # The history is in time order whatever the arrival order; free text is never markup.
    assert handed_over < in_transit
    assert "handed_over" in lines[handed_over] and "picked up by" in lines[handed_over]
    assert "in_transit" in lines[in_transit] and "Memphis [hub 7]" in lines[in_transit]
    held = row(lines, "│ f1 ")
    assert "order" in lines[held] and "payment" in lines[held + 1] and "held for" in text


def row(lines: list[str], text: str) -> int:
    """The first line that holds `text`."""
    return next(index for index, line in enumerate(lines) if text in line)


@bounded(120)
async def test_orders_search_filters_by_delivery_status_and_none_finds_documents_from_before_1_1(
    harness: Harness,
) -> None:
    await shipped(harness, "ord-delivered")
    await send_all(
        harness, placed("ord-partial", [line("L1", 1), line("L2", 1)]), paid("ord-partial")
    )
    await send_all(
        harness,
        request("ord-partial", "f1", [("L1", 1)], shipment=SHIPMENT),
        request("ord-partial", "f2", [("L2", 1)], shipment=SHIPMENT | {"tracking_number": "2"}),
    )
    await send_all(
        harness, report("ord-delivered", "delivered", 2), report("ord-partial", "delivered", 2)
    )
    await shipped(harness, "ord-on-its-way")
    await harness.settled("ord-delivered", lambda o: o.delivery_status is DeliveryStatus.DELIVERED)
    await harness.settled(
        "ord-partial", lambda o: o.delivery_status is DeliveryStatus.PARTIALLY_DELIVERED
    )
    # Written by a 1.0 worker: no delivery_status field at all.
    await harness.store.orders.insert_one(
        {"_id": "ord-from-1-0", "version": 1, "placed": True, "status": "fulfilled"}
    )

    assert found_ids(harness, "--delivery-status", "delivered") == ["ord-delivered"]
    assert found_ids(harness, "--delivery-status", "partially_delivered") == ["ord-partial"]
    assert found_ids(harness, "--delivery-status", "none") == ["ord-from-1-0", "ord-on-its-way"]
    both = ["--delivery-status", "none", "--status", OrderStatus.FULFILLED.value]
    assert found_ids(harness, *both) == ["ord-from-1-0", "ord-on-its-way"]

    table = narrow(harness, "orders", "search", "--delivery-status", "partially_delivered")
    assert table.returncode == 0, table.stderr
    assert "ord-partial" in table.stdout and "partially_delivered" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= WIDTH
    refused = narrow(harness, "orders", "search", "--delivery-status", "lost")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
