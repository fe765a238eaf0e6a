"""One test per rule of the contract's 1.1 section "After the fulfillment", on the pure core."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from consumers.decode import Rejection, decode
from lifecycle import Outcome
from lifecycle.record import output_id
from schemas.document import OrderDocument
from schemas.events import Distribution, Inbound
from schemas.names import (
    DeadLetterReason,
    DeliveryStatus,
    EventType,
    FulfillmentStatus,
    HoldReason,
    OrderStatus,
    ShipmentStatus,
    TimelineType,
    Topic,
)
from tests.factories import (
    ADDRESS,
    T0,
    cancel_fulfillment,
    cancel_order,
    captured,
    envelope,
    line,
    placed,
    report_data,
    requested,
    status_reported,
    stored_before_1_1,
    tracking_data,
    tracking_updated,
)
from tests.unit.test_lifecycle_rules import decide, of_type, run

SHIPMENT = {"carrier": "DHL", "tracking_number": "AWB-1"}
UPDATED = EventType.FULFILLMENT_SHIPMENT_UPDATED
HELD = EventType.FULFILLMENT_HELD


def shipped(**request: Any) -> OrderDocument:
    """A paid order of two shipped units, fulfilled by `ful-1` with DHL AWB-1."""
    order, _ = run(placed(), captured(), requested(**{"shipment": SHIPMENT} | request))
    return order


def fulfillment(order: OrderDocument, fulfillment_id: str = "ful-1") -> Any:
    found = order.fulfillment(fulfillment_id)
    assert found is not None
    return found


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def report(status: str, hours: float, fulfillment_id: str = "ful-1", **extra: Any) -> Inbound:
    return status_reported(
        fulfillment_id=fulfillment_id, status=status, happened_at=at(hours), **extra
    )


def timeline(order: OrderDocument, kind: str) -> list[str]:
    return [entry.event_id for entry in order.timeline if entry.type == kind]


def statuses(order: OrderDocument, fulfillment_id: str = "ful-1") -> list[str]:
    return [event.status.value for event in fulfillment(order, fulfillment_id).shipment_events]


# ---- tracking updates ------------------------------------------------------------------------


def test_tracking_update_on_a_completed_shipment_replaces_the_fields_given_and_publishes() -> None:
    order, outputs = run(
        tracking_updated(tracking_number="AWB-2", tracking_url="https://t.example/2"),
        order=shipped(),
    )
    assert fulfillment(order).shipment.model_dump() == {
        "carrier": "DHL",
        "tracking_number": "AWB-2",
        "tracking_url": "https://t.example/2",
    }
    [update] = of_type(outputs, UPDATED)
    assert update["shipment"]["tracking_number"] == "AWB-2"
    assert update["shipment_status"] is None and update["happened_at"] is None
    assert update["delivery_status"] == "none"
    assert (update["order_number"], update["fulfillment_id"]) == ("#1001", "ful-1")


def test_tracking_update_with_an_empty_tracking_url_removes_the_link() -> None:
    order = shipped(shipment=SHIPMENT | {"tracking_url": "https://t.example/1"})
    order, outputs = run(tracking_updated(carrier="UPS", tracking_url=""), order=order)
    assert fulfillment(order).shipment.model_dump() == {
        "carrier": "UPS",
        "tracking_number": "AWB-1",
        "tracking_url": None,
    }
    assert len(of_type(outputs, UPDATED)) == 1


def test_tracking_update_that_changes_nothing_publishes_nothing() -> None:
    order, outputs = run(tracking_updated(carrier="DHL"), order=shipped())
    assert not of_type(outputs, UPDATED)
    assert order.timeline[-1].summary == "tracking update changed nothing"


def test_tracking_update_on_a_cancelled_fulfillment_is_refused_on_the_timeline() -> None:
    update = tracking_updated(tracking_number="AWB-2")
    order, outputs = run(cancel_fulfillment(), update, order=shipped())
    assert fulfillment(order).shipment.tracking_number == "AWB-1"
    assert not of_type(outputs, UPDATED)
    assert timeline(order, TimelineType.TRACKING_UPDATE_REFUSED) == [update.id]
    assert order.timeline[-1].summary == "tracking update refused: the fulfillment is cancelled"


def test_tracking_update_on_a_digital_only_fulfillment_is_refused_on_the_timeline() -> None:
    update = tracking_updated(carrier="DHL", tracking_number="AWB-2")
    order, outputs = run(
        placed(lines=[line("D1", 1, "digital")]), captured(amount="10.00"), requested(), update
    )
    assert fulfillment(order).shipment is None
    assert not of_type(outputs, UPDATED)
    assert order.timeline[-1].summary == "tracking update refused: the fulfillment is digital-only"


def test_a_shipment_without_tracking_data_takes_it_from_an_update_with_carrier_and_number() -> None:
    order, _ = run(placed(), captured(), requested())
    partial = tracking_updated(tracking_number="AWB-9")
    order, outputs = run(partial, order=order)
    assert fulfillment(order).shipment is None and not of_type(outputs, UPDATED)
    assert timeline(order, TimelineType.TRACKING_UPDATE_REFUSED) == [partial.id]
    order, outputs = run(tracking_updated(carrier="UPS", tracking_number="AWB-9"), order=order)
    assert fulfillment(order).shipment.model_dump() == {
        "carrier": "UPS",
        "tracking_number": "AWB-9",
        "tracking_url": None,
    }
    assert len(of_type(outputs, UPDATED)) == 1


# ---- status reports --------------------------------------------------------------------------


def test_status_reports_are_kept_in_happened_at_order_whatever_the_arrival_order() -> None:
    order, _ = run(
        report("delivered", 3),
        report("handed_over", 0),
        report("out_for_delivery", 2),
        report("in_transit", 1),
        order=shipped(),
    )
    assert statuses(order) == ["handed_over", "in_transit", "out_for_delivery", "delivered"]
    kept = fulfillment(order).shipment_events[0]
    assert kept.event_id and kept.happened_at == T0


def test_the_current_status_is_that_of_the_report_with_the_latest_happened_at() -> None:
    order, _ = run(report("out_for_delivery", 2), report("in_transit", 1), order=shipped())
    assert fulfillment(order).shipment_status is ShipmentStatus.OUT_FOR_DELIVERY


def test_on_a_happened_at_tie_the_status_later_in_the_list_is_current() -> None:
    order, _ = run(report("returned", 1), report("delivery_failed", 1), order=shipped())
    assert fulfillment(order).shipment_status is ShipmentStatus.RETURNED
    assert statuses(order) == ["delivery_failed", "returned"]


def test_ties_are_decided_on_the_instant_whatever_the_offset() -> None:
    order, _ = run(
        report("delivered", 1),
        status_reported(status="in_transit", happened_at="2026-11-21T12:00:00+01:00"),
        order=shipped(),
    )
    assert fulfillment(order).shipment_status is ShipmentStatus.DELIVERED


def test_report_times_are_kept_to_the_millisecond_the_store_keeps() -> None:
    order, _ = run(
        status_reported(status="delivered", happened_at="2026-11-21T10:00:00.0004Z"),
        status_reported(status="in_transit", happened_at="2026-11-21T10:00:00.0009Z"),
        order=shipped(),
    )
    assert fulfillment(order).shipment_status is ShipmentStatus.DELIVERED
    assert all(event.happened_at == T0 for event in fulfillment(order).shipment_events)


def test_a_report_that_changes_the_current_status_publishes_shipment_updated() -> None:
    order, outputs = run(report("in_transit", 1, location="Leipzig hub"), order=shipped())
    [update] = of_type(outputs, UPDATED)
    assert update["shipment_status"] == "in_transit"
    assert update["happened_at"] == at(1)
    assert update["shipment"] == SHIPMENT | {"tracking_url": None}
    assert fulfillment(order).shipment_events[0].location == "Leipzig hub"


def test_a_report_older_than_the_current_one_is_kept_and_publishes_nothing() -> None:
    order, _ = run(report("delivered", 5), order=shipped())
    older = report("in_transit", 1)
    after, result = decide(order, older)
    assert result.outputs == []
    assert statuses(after) == ["in_transit", "delivered"]
    assert fulfillment(after).shipment_status is ShipmentStatus.DELIVERED


def test_a_newer_report_of_the_same_status_is_kept_and_publishes_nothing() -> None:
    order, _ = run(report("in_transit", 1, location="Leipzig"), order=shipped())
    after, result = decide(order, report("in_transit", 2, location="Berlin"))
    assert result.outputs == []
    assert statuses(after) == ["in_transit", "in_transit"]


def test_a_duplicate_report_changes_nothing() -> None:
    first = report("in_transit", 1)
    order, _ = run(first, order=shipped())
    after, result = decide(order, first)
    assert result.outcome is Outcome.DUPLICATE and result.outputs == []
    assert after.model_dump() == order.model_dump()


def test_report_on_a_cancelled_fulfillment_is_refused_on_the_timeline() -> None:
    late = report("delivered", 1)
    order, outputs = run(cancel_fulfillment(), late, order=shipped())
    assert fulfillment(order).shipment_events == [] and not of_type(outputs, UPDATED)
    assert timeline(order, TimelineType.STATUS_REPORT_REFUSED) == [late.id]
    assert order.timeline[-1].summary == "status report refused: the fulfillment is cancelled"


def test_report_on_a_digital_only_fulfillment_is_refused_on_the_timeline() -> None:
    order, _ = run(placed(lines=[line("D1", 1, "digital")]), captured(amount="10.00"), requested())
    order, outputs = run(report("delivered", 1), order=order)
    assert fulfillment(order).shipment_status is None and not of_type(outputs, UPDATED)
    assert order.timeline[-1].summary == "status report refused: the fulfillment is digital-only"


def test_a_report_on_a_shipment_without_tracking_data_is_kept_and_published_once_it_has_some() -> (
    None
):
    order, _ = run(placed(), captured(), requested())
    order, outputs = run(report("delivered", 1), order=order)
    assert fulfillment(order).shipment_status is ShipmentStatus.DELIVERED
    assert order.delivery_status is DeliveryStatus.DELIVERED
    assert not of_type(outputs, UPDATED)
    order, outputs = run(tracking_updated(carrier="UPS", tracking_number="1Z"), order=order)
    [update] = of_type(outputs, UPDATED)
    assert (update["shipment_status"], update["delivery_status"]) == ("delivered", "delivered")


# ---- early arrivals --------------------------------------------------------------------------


def test_updates_and_reports_before_the_request_are_remembered_and_applied_when_it_completes() -> (
    None
):
    update = tracking_updated(tracking_number="AWB-2")
    reports = [report("delivered", 2), report("in_transit", 1)]
    order, outputs = run(update, *reports)
    assert not outputs
    assert timeline(order, TimelineType.TRACKING_UPDATE_REMEMBERED) == [update.id]
    assert timeline(order, TimelineType.STATUS_REPORT_REMEMBERED) == [r.id for r in reports]
    order, outputs = run(placed(), captured(), requested(shipment=SHIPMENT), order=order)
    assert fulfillment(order).shipment.tracking_number == "AWB-2"
    assert statuses(order) == ["in_transit", "delivered"]
    assert order.delivery_status is DeliveryStatus.DELIVERED
    assert order.shipment_news("ful-1").reports == []  # type: ignore[union-attr]


def test_updates_and_reports_for_a_pending_request_are_applied_when_it_completes() -> None:
    order, _ = run(placed(), requested(shipment=SHIPMENT), report("handed_over", 0))
    assert fulfillment(order).status is FulfillmentStatus.PENDING
    assert fulfillment(order).shipment_events == []
    order, _ = run(captured(), order=order)
    assert fulfillment(order).shipment_status is ShipmentStatus.HANDED_OVER


def test_remembered_updates_apply_in_arrival_order_and_reports_in_happened_at_order() -> None:
    order, _ = run(
        report("out_for_delivery", 2),
        tracking_updated(tracking_number="AWB-2"),
        report("handed_over", 0),
        tracking_updated(tracking_number="AWB-3"),
        report("in_transit", 1),
    )
    completing = [placed(), captured(), requested(shipment=SHIPMENT)]
    order, _ = run(*completing, order=order)
    assert fulfillment(order).shipment.tracking_number == "AWB-3"
    assert statuses(order) == ["handed_over", "in_transit", "out_for_delivery"]
    notes = [e.summary for e in order.timeline if e.type == EventType.SHIPMENT_STATUS_REPORTED]
    assert [summary.split(" at ")[0] for summary in notes] == [
        "shipment handed_over",
        "shipment in_transit",
        "shipment out_for_delivery",
    ]


def test_what_was_remembered_goes_out_as_one_shipment_updated_after_the_completion() -> None:
    order, _ = run(tracking_updated(tracking_number="AWB-2"), report("in_transit", 1))
    order, outputs = run(placed(), captured(), requested(shipment=SHIPMENT), order=order)
    kinds = [o.type for o in outputs if o.type in (EventType.FULFILLMENT_COMPLETED, UPDATED)]
    assert kinds == [EventType.FULFILLMENT_COMPLETED, UPDATED]
    completed = of_type(outputs, EventType.FULFILLMENT_COMPLETED)[0]
    assert completed["shipment"]["tracking_number"] == "AWB-1"  # as requested
    [update] = of_type(outputs, UPDATED)
    assert update["shipment"]["tracking_number"] == "AWB-2"
    assert (update["shipment_status"], update["delivery_status"]) == ("in_transit", "none")
    [event] = [o for o in outputs if o.type == UPDATED]
    assert event.id == output_id(UPDATED.value, "ord-1", "ful-1", "completion")


def test_remembered_news_is_refused_when_the_request_is_cancelled() -> None:
    update, late = tracking_updated(tracking_number="AWB-2"), report("in_transit", 1)
    order, outputs = run(placed(), requested(shipment=SHIPMENT), update, late, cancel_fulfillment())
    assert timeline(order, TimelineType.TRACKING_UPDATE_REFUSED) == [update.id]
    assert timeline(order, TimelineType.STATUS_REPORT_REFUSED) == [late.id]
    assert fulfillment(order).shipment.tracking_number == "AWB-1"
    assert fulfillment(order).shipment_events == [] and not of_type(outputs, UPDATED)
    order, _ = run(captured(), order=order)
    assert fulfillment(order).shipment_events == []


def test_remembered_news_is_refused_when_the_request_arrives_for_a_cancelled_order() -> None:
    early = report("in_transit", 1)
    order, _ = run(early, placed(), cancel_order(), requested(shipment=SHIPMENT))
    assert fulfillment(order).status is FulfillmentStatus.CANCELLED
    assert timeline(order, TimelineType.STATUS_REPORT_REFUSED) == [early.id]
    refusal = next(e for e in order.timeline if e.type == TimelineType.STATUS_REPORT_REFUSED)
    assert refusal.summary == (
        "remembered status report (in_transit) refused: the fulfillment was cancelled"
    )


def test_remembered_news_is_refused_when_the_fulfillment_turns_out_digital_only() -> None:
    early = [tracking_updated(carrier="DHL", tracking_number="X"), report("delivered", 1)]
    order, outputs = run(
        *early, placed(lines=[line("D1", 1, "digital")]), captured(amount="10.00"), requested()
    )
    assert fulfillment(order).status is FulfillmentStatus.COMPLETED
    assert fulfillment(order).shipment is None and fulfillment(order).shipment_events == []
    refused = timeline(order, TimelineType.TRACKING_UPDATE_REFUSED)
    refused += timeline(order, TimelineType.STATUS_REPORT_REFUSED)
    assert refused == [e.id for e in early]
    assert not of_type(outputs, UPDATED)


def test_shipment_updated_ids_are_deterministic_and_name_their_cause() -> None:
    events = [report("in_transit", 1), tracking_updated(tracking_number="AWB-2")]
    _, first = run(*events, order=shipped())
    _, second = run(*events, order=shipped())
    assert [o.id for o in first] == [o.id for o in second]
    assert [o.id for o in first] == [
        output_id(UPDATED.value, "ord-1", "ful-1", "event", event.id) for event in events
    ]


# ---- delivery status -------------------------------------------------------------------------


def two_shipments() -> OrderDocument:
    """A fulfilled order shipped in two parcels, `a` and `b`."""
    order, _ = run(
        placed(lines=[line("L1", 1), line("L2", 1)]),
        captured(),
        requested(fulfillment_id="a", lines=[("L1", 1)], shipment=SHIPMENT),
        requested(fulfillment_id="b", lines=[("L2", 1)], shipment=SHIPMENT),
    )
    return order


def test_delivery_status_is_none_until_some_shipment_is_delivered() -> None:
    order, _ = run(report("out_for_delivery", 1, "a"), order=two_shipments())
    assert order.status is OrderStatus.FULFILLED
    assert order.delivery_status is DeliveryStatus.NONE


def test_delivery_status_is_partially_delivered_while_some_shipments_are_delivered() -> None:
    order, outputs = run(report("delivered", 1, "a"), order=two_shipments())
    assert order.delivery_status is DeliveryStatus.PARTIALLY_DELIVERED
    assert of_type(outputs, UPDATED)[0]["delivery_status"] == "partially_delivered"
    assert timeline(order, TimelineType.DELIVERY_STATUS_CHANGED)


def test_delivery_status_is_delivered_once_fulfilled_and_every_shipment_is_delivered() -> None:
    order, outputs = run(
        report("delivered", 1, "a"), report("delivered", 2, "b"), order=two_shipments()
    )
    assert order.delivery_status is DeliveryStatus.DELIVERED
    assert of_type(outputs, UPDATED)[-1]["delivery_status"] == "delivered"


def test_every_shipment_delivered_on_an_order_not_fulfilled_is_partially_delivered() -> None:
    order, _ = run(
        placed(lines=[line("L1", 2)]),
        captured(),
        requested(lines=[("L1", 1)], shipment=SHIPMENT),
        report("delivered", 1),
    )
    assert order.status is OrderStatus.PARTIALLY_FULFILLED
    assert order.delivery_status is DeliveryStatus.PARTIALLY_DELIVERED


def test_a_digital_fulfillment_counts_as_delivered_when_completed() -> None:
    order, _ = run(placed(lines=[line("D1", 1, "digital")]), captured(amount="10.00"), requested())
    assert order.delivery_status is DeliveryStatus.DELIVERED
    mixed, _ = run(
        placed(lines=[line("D1", 1, "digital"), line("L1", 1)]),
        captured(amount="20.00"),
        requested(fulfillment_id="e-book", lines=[("D1", 1)]),
        requested(fulfillment_id="parcel", lines=[("L1", 1)], shipment=SHIPMENT),
    )
    assert mixed.delivery_status is DeliveryStatus.PARTIALLY_DELIVERED
    mixed, _ = run(report("delivered", 1, "parcel"), order=mixed)
    assert mixed.delivery_status is DeliveryStatus.DELIVERED


def test_a_later_report_that_the_parcel_was_returned_takes_back_the_delivery() -> None:
    order, _ = run(report("delivered", 1), order=shipped())
    assert order.delivery_status is DeliveryStatus.DELIVERED
    order, outputs = run(report("returned", 9), order=order)
    assert order.delivery_status is DeliveryStatus.NONE
    assert of_type(outputs, UPDATED)[0]["delivery_status"] == "none"


def test_undoing_a_delivered_fulfillment_takes_it_out_of_the_delivery_status() -> None:
    order, _ = run(report("delivered", 1, "a"), order=two_shipments())
    order, _ = run(cancel_fulfillment(fulfillment_id="a"), order=order)
    assert order.delivery_status is DeliveryStatus.NONE


def test_a_document_written_before_1_1_loads_and_derives_its_delivery_status_on_the_next_event() -> (
    None
):
    order, _ = run(placed(lines=[line("D1", 1, "digital")]), captured(amount="10.00"), requested())
    old = OrderDocument.model_validate(stored_before_1_1(order))
    assert old.delivery_status is DeliveryStatus.NONE
    assert fulfillment(old).shipment_events == [] and fulfillment(old).holds == []
    old, _ = run(report("delivered", 1, "nothing-yet"), order=old)
    assert old.delivery_status is DeliveryStatus.DELIVERED


# ---- holds -----------------------------------------------------------------------------------


def test_a_request_before_the_order_is_placed_is_held_awaiting_order() -> None:
    _, outputs = run(requested(lines=[("L1", 1)]))
    assert of_type(outputs, HELD) == [
        {
            "order_id": "ord-1",
            "order_number": None,
            "fulfillment_id": "ful-1",
            "reason": "awaiting_order",
            "lines": [{"line_id": "L1", "sku": None, "quantity": 1}],
        }
    ]


def test_a_request_for_an_unpaid_order_is_held_awaiting_payment() -> None:
    _, outputs = run(placed(), requested(lines=[("L1", 1)]))
    [held] = of_type(outputs, HELD)
    assert held["reason"] == "awaiting_payment" and held["order_number"] == "#1001"
    assert held["lines"] == [{"line_id": "L1", "sku": "SKU-L1", "quantity": 1}]


def test_a_request_held_for_the_order_is_held_again_for_payment_once_placed() -> None:
    order, outputs = run(requested(), placed(), captured())
    assert [h["reason"] for h in of_type(outputs, HELD)] == ["awaiting_order", "awaiting_payment"]
    assert fulfillment(order).holds == [HoldReason.AWAITING_ORDER, HoldReason.AWAITING_PAYMENT]
    assert of_type(outputs, HELD)[1]["lines"] == []  # every quantity still unfulfilled


def test_a_request_paid_on_placement_is_held_only_for_the_order() -> None:
    order, outputs = run(captured(), requested(), placed())
    assert [h["reason"] for h in of_type(outputs, HELD)] == ["awaiting_order"]
    assert order.status is OrderStatus.FULFILLED


def test_each_hold_reason_goes_out_once_per_request() -> None:
    _, outputs = run(
        placed(),
        requested(),
        captured(amount="5.00", payment_id="p1"),
        captured(amount="5.00", payment_id="p2", currency="EUR"),
        placed(),
    )
    assert [h["reason"] for h in of_type(outputs, HELD)] == ["awaiting_payment"]


def test_a_request_carried_out_or_cancelled_on_arrival_is_not_held() -> None:
    _, outputs = run(placed(), captured(), requested(fulfillment_id="now"))
    _, cancelled = run(cancel_order(), requested(fulfillment_id="never"))
    assert not of_type(outputs + cancelled, HELD)


def test_hold_ids_are_deterministic_per_request_and_reason() -> None:
    _, outputs = run(requested(), placed())
    assert [o.id for o in outputs if o.type is HELD] == [
        output_id(HELD.value, "ord-1", "ful-1", reason) for reason in HoldReason
    ]


# ---- slip data -------------------------------------------------------------------------------


def test_completed_event_carries_the_customer_and_the_delivery_address_in_force() -> None:
    corrected = ADDRESS | {"line1": "2 Side St"}
    _, outputs = run(placed(), captured(), requested(shipping_address=corrected))
    completed = of_type(outputs, EventType.FULFILLMENT_COMPLETED)[0]
    assert completed["customer"] == {"name": "Ada Buyer", "email": "ada@example.com", "phone": None}
    assert completed["delivery_address"]["line1"] == "2 Side St"


def test_a_later_shipment_goes_to_the_address_a_former_request_corrected() -> None:
    corrected = ADDRESS | {"line1": "2 Side St"}
    _, outputs = run(
        placed(lines=[line("L1", 2)]),
        captured(),
        requested(fulfillment_id="a", lines=[("L1", 1)], shipping_address=corrected),
        requested(fulfillment_id="b", lines=[("L1", 1)]),
    )
    later = of_type(outputs, EventType.FULFILLMENT_COMPLETED)[1]
    assert later["delivery_address"]["line1"] == "2 Side St"


def test_a_digital_only_completed_event_has_the_customer_but_no_delivery_address() -> None:
    _, outputs = run(
        placed(lines=[line("D1", 1, "digital")]), captured(amount="10.00"), requested()
    )
    completed = of_type(outputs, EventType.FULFILLMENT_COMPLETED)[0]
    assert completed["customer"]["email"] == "ada@example.com"
    assert completed["delivery_address"] is None


# ---- revoking access -------------------------------------------------------------------------


def digital_order(*distributions: dict[str, Any]) -> OrderDocument:
    order, _ = run(
        placed(lines=[line("D1", 1, "digital"), line("D2", 1, "digital"), line("L1", 1)]),
        captured(amount="30.00"),
        requested(shipment=SHIPMENT, distributions=list(distributions)),
    )
    return order


def test_undoing_a_digital_fulfillment_lists_the_access_to_revoke_never_credentials() -> None:
    secret = {"username": "ada", "password": "pa55"}
    order = digital_order(
        {"line_id": "D1", "access_url": "https://dl.example/1", "credentials": secret}
    )
    _, outputs = run(cancel_fulfillment(), order=order)
    [cancelled] = of_type(outputs, EventType.FULFILLMENT_CANCELLED)
    assert cancelled["previously_completed"] is True
    assert cancelled["revoke_access"] == [
        {"line_id": "D1", "access_url": "https://dl.example/1"},
        {"line_id": "D2", "access_url": None},
    ]
    assert "pa55" not in json.dumps(cancelled)


def test_undoing_a_shipment_only_fulfillment_revokes_no_access() -> None:
    _, outputs = run(cancel_fulfillment(), order=shipped())
    assert of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["revoke_access"] is None


def test_withdrawing_a_digital_request_that_never_completed_revokes_no_access() -> None:
    _, outputs = run(placed(lines=[line("D1", 1, "digital")]), requested(), cancel_fulfillment())
    assert of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["revoke_access"] is None


def test_a_distribution_for_a_line_the_fulfillment_does_not_deliver_is_neither_handed_out_nor_revoked() -> (
    None
):
    access = {
        "line_id": "D2",
        "access_url": "https://dl.example/2",
        "credentials": {"token": "t0k"},
    }
    order, outputs = run(
        placed(lines=[line("L1", 1), line("D2", 1, "digital")]),
        captured(amount="20.00"),
        # Ships L1 only, but names D2's access; D2 is then delivered by its own fulfillment.
        requested(lines=[("L1", 1)], shipment=SHIPMENT, distributions=[access]),
        requested(fulfillment_id="ful-2", lines=[("D2", 1)], distributions=[access]),
    )
    first, second = of_type(outputs, EventType.FULFILLMENT_COMPLETED)
    assert first["distributions"] is None
    assert [given["line_id"] for given in second["distributions"]] == ["D2"]
    shipped = order.fulfillment("ful-1")
    assert shipped is not None and shipped.distributions is None
    assert any(
        "distributions not handed out" in entry.summary and "D2" in entry.summary
        for entry in order.timeline
    )
    _, outputs = run(cancel_fulfillment(), order=order)
    # Undoing the shipment does not withdraw the access ful-2 delivered.
    assert of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["revoke_access"] is None


def test_undoing_a_completion_stored_before_distributions_were_filtered_revokes_only_its_own() -> (
    None
):
    order = digital_order({"line_id": "D1", "access_url": "https://dl.example/1"})
    stored = order.fulfillment("ful-1")
    assert stored is not None
    # As an older version stored it: a distribution for a line this fulfillment did not carry out.
    other = Distribution(line_id="X9", access_url="https://dl.example/other")
    stored.distributions = [*(stored.distributions or ()), other]
    _, outputs = run(cancel_fulfillment(), order=order)
    revoked = of_type(outputs, EventType.FULFILLMENT_CANCELLED)[0]["revoke_access"]
    assert [given["line_id"] for given in revoked] == ["D1", "D2"]


# ---- invalid new inputs are dead letters -----------------------------------------------------


def rejection(topic: Topic, event_type: EventType, data: dict[str, Any]) -> Rejection:
    value = json.dumps(envelope(event_type, "ord-1", data)).encode()
    result = decode(topic, b"ord-1", value)
    assert isinstance(result, Rejection), result
    assert result.reason is DeadLetterReason.INVALID_DATA
    return result


def test_a_tracking_update_giving_none_of_the_three_fields_is_invalid_data() -> None:
    found = rejection(
        Topic.FULFILLMENTS_TRACKING_UPDATED,
        EventType.FULFILLMENT_TRACKING_UPDATED,
        {"fulfillment_id": "ful-1", "carrier": None},
    )
    assert "at least one of carrier, tracking_number, tracking_url" in found.error


def test_a_report_of_an_unknown_status_is_invalid_data() -> None:
    found = rejection(
        Topic.SHIPMENTS_STATUS_REPORTED,
        EventType.SHIPMENT_STATUS_REPORTED,
        report_data(status="lost_at_sea"),
    )
    assert found.error.startswith("data.status:") and "lost_at_sea" not in found.error


@pytest.mark.parametrize(
    "happened_at",
    [
        "2026-11-21",
        "2026-11-21T10:00:00",
        "21/11/2026 10:00",
        1_790_000_000,
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_a_report_whose_happened_at_is_not_an_rfc_3339_time_a_store_can_hold_is_invalid_data(
    happened_at: Any,
) -> None:
    found = rejection(
        Topic.SHIPMENTS_STATUS_REPORTED,
        EventType.SHIPMENT_STATUS_REPORTED,
        report_data() | {"happened_at": happened_at},
    )
    assert found.error.startswith("data.happened_at:")


def test_the_new_inputs_decode_to_typed_events() -> None:
    for topic, event_type, data in (
        (
            Topic.FULFILLMENTS_TRACKING_UPDATED,
            EventType.FULFILLMENT_TRACKING_UPDATED,
            tracking_data(tracking_url=""),
        ),
        (
            Topic.SHIPMENTS_STATUS_REPORTED,
            EventType.SHIPMENT_STATUS_REPORTED,
            report_data(location="Hub"),
        ),
    ):
        value = json.dumps(envelope(event_type, "ord-1", data)).encode()
        assert isinstance(decode(topic, b"ord-1", value), Inbound)
