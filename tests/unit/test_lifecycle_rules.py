"""One test per rule of CONTRACT.md, "The order lifecycle", on the pure core."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from lifecycle import Applied, Outcome, apply
from lifecycle.fulfillment import LINES_NOT_LISTED
from schemas.cloudevents import CloudEvent, to_json
from schemas.document import OrderDocument
from schemas.events import Inbound
from schemas.limits import MAX_OUTPUT_BYTES, MAX_SUMMARY_CHARS
from schemas.names import (
    CancelReason,
    EventType,
    FulfillmentStatus,
    OrderStatus,
    PaymentStatus,
    TimelineType,
)
from tests.factories import (
    ADDRESS,
    cancel_fulfillment,
    cancel_order,
    captured,
    inbound,
    line,
    placed,
    requested,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def decide(order: OrderDocument | None, event: Inbound) -> tuple[OrderDocument, Applied]:
    """`event` applied to a copy of `order` (a new order when None), the original untouched."""
    state = order.model_copy(deep=True) if order else OrderDocument(_id=event.order_id)
    return state, apply(state, event, NOW)


def run(
    *events: Inbound, order: OrderDocument | None = None
) -> tuple[OrderDocument, list[CloudEvent]]:
    outputs: list[CloudEvent] = []
    for event in events:
        order, result = decide(order, event)
        outputs += result.outputs
    assert order is not None
    return order, outputs


def of_type(outputs: list[CloudEvent], event_type: EventType) -> list[dict[str, Any]]:
    return [o.data.model_dump(mode="json") for o in outputs if o.type == event_type]


def fulfillment_status(order: OrderDocument, fulfillment_id: str = "ful-1") -> FulfillmentStatus:
    found = order.fulfillment(fulfillment_id)
    assert found is not None
    return found.status


# ---- payment gating -------------------------------------------------------------------------


def test_placed_order_awaits_payment_with_first_status_from_null() -> None:
    order, outputs = run(placed())
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.payment_status is PaymentStatus.PENDING
    assert of_type(outputs, EventType.ORDER_STATUS_CHANGED)[0]["from_status"] is None


def test_order_is_paid_once_captures_in_its_currency_reach_the_total() -> None:
    order, _ = run(placed(), captured(amount="5.00", payment_id="p1"))
    assert order.payment_status is PaymentStatus.PARTIALLY_CAPTURED
    assert order.status is OrderStatus.AWAITING_PAYMENT
    order, _ = run(captured(amount="15.00", payment_id="p2"), order=order)
    assert order.payment_status is PaymentStatus.CAPTURED
    assert order.status is OrderStatus.UNFULFILLED


def test_capture_in_another_currency_is_recorded_but_does_not_count() -> None:
    order, _ = run(placed(), captured(amount="20.00", currency="EUR"))
    assert order.payment_status is PaymentStatus.PENDING
    assert len(order.captures) == 1
    assert any(entry.type == "payment.not_counted" for entry in order.timeline)


def test_repeated_payment_id_counts_once() -> None:
    order, _ = run(
        placed(),
        captured(amount="10.00", payment_id="p1"),
        captured(amount="10.00", payment_id="p1"),
    )
    assert order.payment_status is PaymentStatus.PARTIALLY_CAPTURED
    assert order.captured_amount == "10.00"


def test_captures_that_arrive_before_the_order_count_once_it_is_placed() -> None:
    order, _ = run(
        captured(amount="5.00", payment_id="p1"),
        captured(amount="20.00", payment_id="p2", currency="EUR"),
        captured(amount="15.00", payment_id="p3"),
        placed(),
        captured(amount="1.00", payment_id="p4"),
    )
    assert order.captured_amount == "21.00"
    assert order.payment_status is PaymentStatus.CAPTURED
    assert order.status is OrderStatus.UNFULFILLED


def test_the_captured_total_carries_on_from_a_stored_document() -> None:
    order, _ = run(placed(), captured(amount="5.00", payment_id="p1"))
    stored = OrderDocument.model_validate(order.to_mongo())
    order, _ = run(captured(amount="15.00", payment_id="p2"), order=stored)
    assert order.captured_amount == "20.00"
    assert order.payment_status is PaymentStatus.CAPTURED


def test_request_for_an_unpaid_order_is_kept_pending() -> None:
    order, outputs = run(placed(), requested())
    assert fulfillment_status(order) is FulfillmentStatus.PENDING
    assert not of_type(outputs, EventType.FULFILLMENT_COMPLETED)


def test_request_before_the_order_is_placed_is_kept_pending() -> None:
    order, _ = run(requested())
    assert order.status is None
    assert fulfillment_status(order) is FulfillmentStatus.PENDING


def test_pending_requests_are_carried_out_in_arrival_order_once_paid() -> None:
    order, outputs = run(
        placed(lines=[line("L1", 2)]),
        requested(fulfillment_id="a", lines=[("L1", 2)]),
        requested(fulfillment_id="b", lines=[("L1", 1)]),
        captured(),
    )
    assert fulfillment_status(order, "a") is FulfillmentStatus.COMPLETED
    assert fulfillment_status(order, "b") is FulfillmentStatus.CANCELLED
    completed = of_type(outputs, EventType.FULFILLMENT_COMPLETED)
    cancelled = of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    assert [c["fulfillment_id"] for c in completed] == ["a"]
    assert cancelled[0]["reason"] == CancelReason.INVALID_REQUEST


def test_zero_total_order_is_paid_on_placement() -> None:
    order, _ = run(placed(lines=[line("L1", 1, price="0")], total="0"), requested())
    assert order.status is OrderStatus.FULFILLED


# ---- fulfillment ---------------------------------------------------------------------------


def test_partial_fulfillment_makes_the_order_partially_fulfilled() -> None:
    order, outputs = run(placed(), captured(), requested(lines=[("L1", 1)]))
    assert order.status is OrderStatus.PARTIALLY_FULFILLED
    assert order.lines[0].fulfilled_quantity == 1
    assert (
        of_type(outputs, EventType.FULFILLMENT_COMPLETED)[0]["order_status"]
        == "partially_fulfilled"
    )


def test_request_without_lines_fulfills_every_remaining_quantity() -> None:
    order, outputs = run(
        placed(lines=[line("L1", 2), line("L2", 3)]),
        captured(amount="50.00"),
        requested(fulfillment_id="a", lines=[("L1", 1)]),
        requested(fulfillment_id="b"),
    )
    assert order.status is OrderStatus.FULFILLED
    second = of_type(outputs, EventType.FULFILLMENT_COMPLETED)[1]
    assert {(item["line_id"], item["quantity"]) for item in second["lines"]} == {
        ("L1", 1),
        ("L2", 3),
    }


def test_unknown_line_id_is_an_invalid_request() -> None:
    order, outputs = run(placed(), captured(), requested(lines=[("nope", 1)]))
    cancelled = of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]
    assert cancelled["reason"] == "invalid_request"
    assert "unknown line_id" in cancelled["detail"]
    assert order.status is OrderStatus.UNFULFILLED


def test_quantity_above_what_is_unfulfilled_is_an_invalid_request() -> None:
    _, outputs = run(placed(), captured(), requested(lines=[("L1", 3)]))
    assert "above" in of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["detail"]


def test_nothing_left_to_fulfill_is_an_invalid_request() -> None:
    _, outputs = run(
        placed(), captured(), requested(fulfillment_id="a"), requested(fulfillment_id="b")
    )
    cancelled = of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    assert [c["fulfillment_id"] for c in cancelled] == ["b"]
    assert cancelled[0]["detail"] == "nothing left to fulfill"


def test_shipment_line_without_a_shipping_address_is_an_invalid_request() -> None:
    order, _ = run(placed(), captured())
    order.shipping_address = None
    order, outputs = run(requested(), order=order)
    assert "no shipping address" in of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["detail"]


def test_corrected_shipping_address_becomes_the_orders_address() -> None:
    corrected = ADDRESS | {"line1": "2 Side St"}
    order, _ = run(placed(), captured(), requested(shipping_address=corrected))
    assert order.shipping_address is not None and order.shipping_address.line1 == "2 Side St"


def test_fulfillment_id_reused_under_a_new_event_id_is_not_carried_out_twice() -> None:
    order, outputs = run(
        placed(lines=[line("L1", 4)]),
        captured(amount="40.00"),
        requested(lines=[("L1", 1)], event_id="e1"),
        requested(lines=[("L1", 1)], event_id="e2"),
    )
    assert order.lines[0].fulfilled_quantity == 1
    assert len(of_type(outputs, EventType.FULFILLMENT_COMPLETED)) == 1


def test_duplicate_event_id_has_no_further_effect() -> None:
    order, _ = run(placed(), captured(event_id="pay-evt"))
    after, result = decide(order, captured(payment_id="other", event_id="pay-evt"))
    assert result.outcome is Outcome.DUPLICATE
    assert result.outputs == []
    assert after.model_dump() == order.model_dump()


def test_request_whose_completed_event_would_be_too_large_is_cancelled_as_invalid() -> None:
    big = {
        "line_id": "D1",
        "access_url": "https://example.com/" + "a" * 900,
        "instructions": "i" * 1000,
        "credentials": {"username": "u" * 1000, "token": "t" * 1000},
    }
    order, outputs = run(
        placed(lines=[line("D1", 1, "digital")]),
        captured(amount="10.00"),
        requested(distributions=[big] * 300),
    )
    assert not of_type(outputs, EventType.FULFILLMENT_COMPLETED)
    cancelled = of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]
    assert cancelled["reason"] == CancelReason.INVALID_REQUEST
    size = re.fullmatch(
        rf"the fulfillment.completed event would be (\d+) bytes, above the limit of {MAX_OUTPUT_BYTES} bytes",
        cancelled["detail"],
    )
    assert size is not None and int(size[1]) > MAX_OUTPUT_BYTES
    assert order.lines[0].fulfilled_quantity == 0
    assert order.status is OrderStatus.UNFULFILLED


def test_request_with_large_distributions_under_the_output_limit_is_carried_out() -> None:
    big = {"line_id": "D1", "access_url": "https://example.com/" + "a" * 900}
    order, outputs = run(
        placed(lines=[line("D1", 1, "digital")]),
        captured(amount="10.00"),
        requested(distributions=[big] * 300),
    )
    completed = [o for o in outputs if o.type == EventType.FULFILLMENT_COMPLETED]
    assert len(to_json(completed[0]).encode()) > 200_000
    assert order.status is OrderStatus.FULFILLED


def test_shipment_carrier_and_tracking_number_are_published() -> None:
    shipment = {"carrier": "DHL", "tracking_number": "AWB-1"}
    _, outputs = run(placed(), captured(), requested(shipment=shipment))
    assert (
        of_type(outputs, EventType.FULFILLMENT_COMPLETED)[0]["shipment"]["tracking_number"]
        == "AWB-1"
    )


# ---- cancelling a fulfillment --------------------------------------------------------------


def test_cancelling_a_pending_fulfillment_withdraws_it() -> None:
    order, outputs = run(placed(), requested(), cancel_fulfillment(), captured())
    assert fulfillment_status(order) is FulfillmentStatus.CANCELLED
    cancelled = of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]
    assert cancelled["reason"] == "cancel_requested" and cancelled["previously_completed"] is False
    assert not of_type(outputs, EventType.FULFILLMENT_COMPLETED)


def test_cancelling_a_completed_fulfillment_makes_its_quantities_unfulfilled_again() -> None:
    order, outputs = run(placed(), captured(), requested(), cancel_fulfillment())
    assert order.lines[0].fulfilled_quantity == 0
    assert order.status is OrderStatus.UNFULFILLED
    cancelled = of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]
    assert cancelled["previously_completed"] is True
    assert cancelled["order_status"] == "unfulfilled"


def test_cancelled_fulfillment_can_be_fulfilled_again_under_a_new_id() -> None:
    order, _ = run(
        placed(), captured(), requested(), cancel_fulfillment(), requested(fulfillment_id="ful-2")
    )
    assert order.status is OrderStatus.FULFILLED


def test_cancel_for_a_fulfillment_not_seen_yet_is_remembered_and_applied_on_arrival() -> None:
    order, outputs = run(cancel_fulfillment(), placed(), captured(), requested())
    assert fulfillment_status(order) is FulfillmentStatus.CANCELLED
    assert order.lines[0].fulfilled_quantity == 0
    assert of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["reason"] == "cancel_requested"


# ---- cancelling the order ------------------------------------------------------------------


def test_order_cancel_cancels_pending_fulfillments_and_later_requests() -> None:
    order, outputs = run(
        placed(), requested(), cancel_order(), requested(fulfillment_id="ful-2"), captured()
    )
    assert order.status is OrderStatus.CANCELLED
    reasons = {
        c["fulfillment_id"]: c["reason"] for c in of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    }
    assert reasons == {"ful-1": "order_cancelled", "ful-2": "order_cancelled"}


def test_order_cancel_is_refused_while_a_fulfillment_is_completed() -> None:
    order, outputs = run(placed(), captured(), requested(lines=[("L1", 1)]), cancel_order())
    assert order.status is OrderStatus.PARTIALLY_FULFILLED
    assert any(entry.type == "order.cancel_refused" for entry in order.timeline)
    assert not [
        s for s in of_type(outputs, EventType.ORDER_STATUS_CHANGED) if s["to_status"] == "cancelled"
    ]


def test_order_cancel_refusal_names_five_completed_fulfillments_and_counts_the_rest() -> None:
    requests = [requested(fulfillment_id=f"ful-{i}", lines=[("L1", 1)]) for i in range(13)]
    order, _ = run(
        placed(lines=[line("L1", 13)]),
        captured(amount="130.00"),
        *requests,
        cancel_fulfillment(fulfillment_id="ful-0"),
        cancel_order(),
    )
    refusal = next(e for e in order.timeline if e.type == TimelineType.ORDER_CANCEL_REFUSED)
    assert refusal.summary == (
        "cancel refused: fulfillments ful-1, ful-2, ful-3, ful-4, ful-5 and 7 more are completed;"
        " cancel them first"
    )


def test_order_cancel_is_accepted_once_completed_fulfillments_are_undone() -> None:
    order, _ = run(placed(), captured(), requested(), cancel_fulfillment(), cancel_order())
    assert order.status is OrderStatus.CANCELLED


# ---- records -------------------------------------------------------------------------------


def test_every_applied_event_is_on_the_timeline_with_its_event_id() -> None:
    events = [placed(), captured(), requested()]
    order, _ = run(*events)
    assert {event.id for event in events} <= {entry.event_id for entry in order.timeline}


def test_every_timeline_summary_is_cut_at_the_limit_with_an_ellipsis() -> None:
    long_cancel = inbound(EventType.ORDER_CANCEL_REQUESTED, "ord-1", {"reason": "x" * 1000})
    order, _ = run(placed(), long_cancel)
    assert all(len(entry.summary) <= MAX_SUMMARY_CHARS for entry in order.timeline)
    cancelled = next(e for e in order.timeline if e.type == EventType.ORDER_CANCEL_REQUESTED)
    assert len(cancelled.summary) == MAX_SUMMARY_CHARS
    assert cancelled.summary.startswith("order cancelled: xxx") and cancelled.summary.endswith("…")


def test_many_refusals_over_many_fulfillments_keep_every_summary_within_the_limit() -> None:
    order = OrderDocument(_id="ord-1")
    apply(order, placed(lines=[line("L1", 600)]), NOW)
    apply(order, captured(amount="6000.00"), NOW)
    for index in range(600):
        apply(order, requested(fulfillment_id=f"ful-{index:04}", lines=[("L1", 1)]), NOW)
    for _ in range(220):
        apply(order, cancel_order(), NOW)
    refusals = [e for e in order.timeline if e.type == TimelineType.ORDER_CANCEL_REFUSED]
    assert len(refusals) == 220
    assert all(
        e.summary.endswith("and 595 more are completed; cancel them first") for e in refusals
    )


def test_output_ids_are_deterministic() -> None:
    events = [placed(), captured(), requested()]
    _, first = run(*events)
    _, second = run(*events)
    assert [o.id for o in first] == [o.id for o in second]
    assert len({o.id for o in first}) == len(first)


# ---- event ids reused by another source ----------------------------------------------------


def from_source(event: Inbound, source: str) -> Inbound:
    return replace(event, source=source)


def test_id_reused_by_another_source_is_not_applied_but_noted_on_the_timeline() -> None:
    order, _ = run(placed(), from_source(captured(amount="5.00", event_id="e1"), "urn:a"))
    reuse = from_source(captured(amount="15.00", payment_id="p2", event_id="e1"), "urn:b")
    after, result = decide(order, reuse)
    assert result.outcome is Outcome.ID_REUSED
    assert result.outputs == []
    assert after.captured_amount == "5.00" and len(after.captures) == 1
    entry = after.timeline[-1]
    assert (entry.type, entry.event_id) == (TimelineType.EVENT_ID_REUSED, "e1")
    assert "urn:a" in entry.summary and "urn:b" in entry.summary


def test_a_reused_id_changes_the_document_but_a_duplicate_does_not() -> None:
    # The shell saves an order when some event changed it: a reuse's timeline entry is kept.
    order = OrderDocument(_id="ord-1")
    first = from_source(placed(event_id="e1"), "urn:a")
    assert apply(order, first, NOW).changed
    assert not apply(order, first, NOW).changed
    reuse = apply(order, from_source(cancel_order(event_id="e1"), "urn:b"), NOW)
    assert reuse.changed and reuse.outputs == []
    assert order.status is OrderStatus.AWAITING_PAYMENT


def test_a_reused_id_is_noted_once_per_source() -> None:
    order = OrderDocument(_id="ord-1")
    apply(order, from_source(placed(event_id="e1"), "urn:a"), NOW)
    reuse = from_source(cancel_order(event_id="e1"), "urn:b")
    outcomes = [apply(order, reuse, NOW).outcome for _ in range(3)]
    third = apply(order, from_source(reuse, "urn:c"), NOW).outcome
    assert outcomes == [Outcome.ID_REUSED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert third is Outcome.ID_REUSED
    reused = [e for e in order.timeline if e.type == TimelineType.EVENT_ID_REUSED]
    assert len(reused) == 2


def test_an_unknown_source_never_counts_as_another_source() -> None:
    order = OrderDocument(_id="ord-1")
    apply(order, placed(event_id="unknown"), NOW)
    apply(order, from_source(captured(event_id="known"), "urn:a"), NOW)
    assert (
        apply(order, from_source(cancel_order(event_id="unknown"), "urn:b"), NOW).outcome
        is Outcome.DUPLICATE
    )
    assert apply(order, cancel_order(event_id="known"), NOW).outcome is Outcome.DUPLICATE
    assert not [e for e in order.timeline if e.type == TimelineType.EVENT_ID_REUSED]


def test_documents_without_sources_load_and_their_ids_get_unknown_sources() -> None:
    stored = {"_id": "ord-1", "applied_event_ids": ["old-1", "old-2"]}
    order = OrderDocument.model_validate(stored)
    assert (
        apply(order, from_source(cancel_order(event_id="old-2"), "urn:b"), NOW).outcome
        is Outcome.DUPLICATE
    )
    apply(order, from_source(placed(event_id="new"), "urn:a"), NOW)
    assert order.applied_event_ids == ["old-1", "old-2", "new"]
    assert order.applied_event_sources == ["", "", "urn:a"]
    reloaded = OrderDocument.model_validate(order.to_mongo())
    reuse = from_source(cancel_order(event_id="new"), "urn:b")
    assert apply(reloaded, reuse, NOW).outcome is Outcome.ID_REUSED


# ---- outputs too large to publish (contract 1.1) -----------------------------------------------


def long_lines(count: int, sku_chars: int = 1000, price: str = "10.00") -> list[dict[str, Any]]:
    """`count` lines whose skus are `sku_chars` long: an output listing them all is large."""
    return [
        line(f"L{n}", 1, price=price) | {"sku": f"{n}-".ljust(sku_chars, "s")} for n in range(count)
    ]


def test_a_held_request_lists_each_line_once_with_its_quantities_summed() -> None:
    _, outputs = run(
        placed(lines=[line("L1", 5), line("L2", 1)]),
        requested(lines=[("L1", 1), ("L2", 1), ("L1", 2)]),
    )
    held = of_type(outputs, EventType.FULFILLMENT_HELD)[0]
    assert [(one["line_id"], one["quantity"]) for one in held["lines"]] == [("L1", 3), ("L2", 1)]


def test_a_request_naming_one_long_line_a_thousand_times_is_held_with_one_line() -> None:
    order, outputs = run(
        placed(lines=[line("L0", 1000) | {"sku": "s" * 1000}]),
        requested(lines=[("L0", 1)] * 1000),
    )
    (held,) = of_type(outputs, EventType.FULFILLMENT_HELD)
    assert held["lines"] == [{"line_id": "L0", "sku": "s" * 1000, "quantity": 1000}]
    assert fulfillment_status(order) is FulfillmentStatus.PENDING


def test_a_request_whose_held_event_would_be_too_large_is_cancelled_as_invalid_without_lines() -> (
    None
):
    order, outputs = run(
        placed(lines=long_lines(900)), requested(lines=[(f"L{n}", 1) for n in range(900)])
    )
    assert not of_type(outputs, EventType.FULFILLMENT_HELD)
    (cancelled,) = of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    assert cancelled["reason"] == CancelReason.INVALID_REQUEST
    assert cancelled["lines"] == []
    size = re.fullmatch(
        rf"the fulfillment.held event would be (\d+) bytes, above the limit of {MAX_OUTPUT_BYTES}"
        rf" bytes \({LINES_NOT_LISTED}\)",
        cancelled["detail"],
    )
    assert size is not None and int(size[1]) > MAX_OUTPUT_BYTES
    assert fulfillment_status(order) is FulfillmentStatus.CANCELLED
    # On the record, the request keeps what it asked for.
    requested_lines = order.fulfillment("ful-1").requested_lines  # type: ignore[union-attr]
    assert requested_lines is not None and len(requested_lines) == 900
    assert all(len(to_json(output).encode()) <= MAX_OUTPUT_BYTES for output in outputs)


def test_a_request_held_before_its_order_whose_next_hold_would_be_too_large_is_cancelled_and_the_order_placed() -> (
    None
):
    early = requested(lines=[(f"L{n}", 1) for n in range(900)])
    order, outputs = run(early, placed(lines=long_lines(900)))
    assert order.placed and order.status is OrderStatus.AWAITING_PAYMENT
    assert [held["reason"] for held in of_type(outputs, EventType.FULFILLMENT_HELD)] == [
        "awaiting_order"
    ]
    (cancelled,) = of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    assert cancelled["reason"] == CancelReason.INVALID_REQUEST and cancelled["lines"] == []


def test_a_request_refused_for_its_size_is_cancelled_listing_its_lines() -> None:
    order, _ = run(placed(), captured())
    event = requested(lines=[("L1", 1)])
    result = apply(order, event, NOW, "the order's document would be too large")
    (cancelled,) = of_type(result.outputs, EventType.FULFILLMENT_CANCELLED)
    assert cancelled["reason"] == CancelReason.INVALID_REQUEST
    assert cancelled["detail"] == "the order's document would be too large"
    assert [(one["line_id"], one["quantity"]) for one in cancelled["lines"]] == [("L1", 1)]


def test_a_request_held_for_its_order_whose_cancel_would_be_too_large_goes_out_without_lines_and_the_order_is_placed() -> (
    None
):
    # Paid before it was placed: the order's placing carries the request out, which is too
    # large; its cancel, with every long line, would be too: it lists none, and the order is
    # placed all the same (the request's fault, not the order's).
    early = requested(lines=[(f"L{n}", 1) for n in range(900)])
    paid = captured(amount="900.00")
    order, outputs = run(early, paid, placed(lines=long_lines(900, price="1.00")))
    assert order.placed and order.status is OrderStatus.UNFULFILLED
    (cancelled,) = of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    assert cancelled["reason"] == CancelReason.INVALID_REQUEST and cancelled["lines"] == []
    assert cancelled["detail"].endswith(f"({LINES_NOT_LISTED})")
    assert all(len(to_json(output).encode()) <= MAX_OUTPUT_BYTES for output in outputs)
