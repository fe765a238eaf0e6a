"""`python -m bench.history`: the cost of one event must not grow with its order's history.

Builds one order with 10, 1,000 and 10,000 prior events, then applies 1,000 more with
`lifecycle.apply` and prints events per second and CPU time per event; then the same with the
order's save encoded after every event (`store.orders.encode`, the write a worker sends). The events cycle
through the kinds that grow an order's lists: captures (another currency, or tiny amounts),
fulfillments carried out and undone, cancels remembered for unseen fulfillments, and order
cancels refused because fulfillments are completed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lifecycle import apply
from schemas.document import OrderDocument
from schemas.events import (
    Customer,
    FulfillmentCancelRequested,
    FulfillmentRequested,
    InputData,
    OrderCancelRequested,
    OrderLine,
    OrderPlaced,
    PaymentCaptured,
    RequestedLine,
)
from schemas.events import Inbound as Event
from schemas.names import Delivery, EventType
from store.orders import encode

ORDER_ID = "ord-history"
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PRIOR = (10, 1_000, 10_000)
MEASURED = 1_000
# Other work on the machine only ever slows a run down: the best of a few is the figure.
REPEATS = 3
# One line big enough that every request in the run can take a unit of it.
QUANTITY = 1_000_000
TOTAL = "10000.00"


@dataclass(frozen=True)
class Figures:
    prior: int
    events_per_second: float
    cpu_us_per_event: float
    timeline: int
    # Applying and encoding the save after every event.
    saved_cpu_us_per_event: float


def _event(index: int, event_type: EventType, data: InputData) -> Event:
    return Event(
        id=f"evt-{index}",
        type=event_type,
        order_id=ORDER_ID,
        time=T0 + timedelta(milliseconds=index),
        data=data,
    )


def _opening() -> list[Event]:
    """A placed and paid order, with one fulfillment that stays completed."""
    placed = OrderPlaced(
        order_number="#history",
        customer=Customer(name="Ada Buyer", email="ada@example.com"),
        currency="USD",
        total=TOTAL,
        lines=[
            OrderLine(
                line_id="L1",
                sku="SKU-L1",
                title="Item",
                quantity=QUANTITY,
                unit_price="0.01",
                delivery=Delivery.DIGITAL,
            )
        ],
    )
    paid = PaymentCaptured(payment_id="pay-main", amount=TOTAL, currency="USD")
    kept = FulfillmentRequested(
        fulfillment_id="ful-kept", lines=[RequestedLine(line_id="L1", quantity=1)]
    )
    return [
        _event(-3, EventType.ORDER_PLACED, placed),
        _event(-2, EventType.PAYMENT_CAPTURED, paid),
        _event(-1, EventType.FULFILLMENT_REQUESTED, kept),
    ]


def _history(start: int, count: int) -> Iterator[Event]:
    """`count` events from position `start` of a six-event cycle."""
    one = [RequestedLine(line_id="L1", quantity=1)]
    for index in range(start, start + count):
        kind = index % 6
        if kind == 0:
            currency = "EUR" if index % 12 else "USD"
            capture = PaymentCaptured(payment_id=f"pay-{index}", amount="0.01", currency=currency)
            yield _event(index, EventType.PAYMENT_CAPTURED, capture)
        elif kind in (1, 3):
            request = FulfillmentRequested(fulfillment_id=f"ful-{index}", lines=one)
            yield _event(index, EventType.FULFILLMENT_REQUESTED, request)
        elif kind == 2:
            # Undoes the request just before; the one at kind 3 stays completed.
            undo = FulfillmentCancelRequested(fulfillment_id=f"ful-{index - 1}")
            yield _event(index, EventType.FULFILLMENT_CANCEL_REQUESTED, undo)
        elif kind == 4:
            early = FulfillmentCancelRequested(fulfillment_id=f"unseen-{index}")
            yield _event(index, EventType.FULFILLMENT_CANCEL_REQUESTED, early)
        else:
            yield _event(index, EventType.ORDER_CANCEL_REQUESTED, OrderCancelRequested())


def measure(prior: int) -> Figures:
    """Apply `MEASURED` events to an order that already has `prior` events (best of a few)."""
    history = OrderDocument(_id=ORDER_ID)
    for event in [*_opening(), *_history(0, prior)]:
        apply(history, event, NOW)
    measured = list(_history(prior, MEASURED))
    best_wall = best_cpu = best_saved = float("inf")
    for _ in range(REPEATS):
        order = history.model_copy(deep=True)
        wall, cpu = time.perf_counter(), time.process_time()
        for event in measured:
            apply(order, event, NOW)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_saved = min(best_saved, _saving(history.model_copy(deep=True), measured))
    per_event = 1e6 / MEASURED
    return Figures(
        prior,
        MEASURED / best_wall,
        best_cpu * per_event,
        len(order.timeline),
        best_saved * per_event,
    )


def _saving(order: OrderDocument, events: list[Event]) -> float:
    """CPU seconds to apply `events` and encode the order's save after each, as a worker does."""
    order.version = 1
    order.remember_stored(encode(order, 0, "token").stored)
    cpu = time.process_time()
    for event in events:
        apply(order, event, NOW)
        order.version += 1
        order.remember_stored(encode(order, order.version - 1, "token").stored)
    return time.process_time() - cpu


def main() -> None:
    print(f"{MEASURED:,} events applied to an order with N prior events")
    print(
        f"{'prior events':>12}  {'events/s':>10}  {'CPU µs/event':>12}"
        f"  {'with save µs':>12}  {'timeline':>9}"
    )
    for prior in PRIOR:
        figures = measure(prior)
        print(
            f"{figures.prior:>12,}  {figures.events_per_second:>10,.0f}"
            f"  {figures.cpu_us_per_event:>12,.1f}  {figures.saved_cpu_us_per_event:>12,.1f}"
            f"  {figures.timeline:>9,}"
        )


if __name__ == "__main__":
    main()
