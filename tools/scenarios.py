"""Realistic order traffic for the demo: every workflow this product exists for, in phases."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.cloudevents import format_time
from schemas.events import (
    Address,
    Credentials,
    Customer,
    Distribution,
    FulfillmentCancelRequested,
    FulfillmentRequested,
    FulfillmentTrackingUpdated,
    OrderCancelRequested,
    OrderLine,
    OrderPlaced,
    PaymentCaptured,
    RequestedLine,
    Shipment,
    ShipmentStatusReported,
    WireModel,
)
from schemas.names import Delivery, EventType, ShipmentStatus, Topic

CARRIERS = [
    ("DHL", "https://www.dhl.com/track?awb={}"),
    ("UPS", None),
    ("FedEx", None),
    ("JNE", None),
]
NAMES = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Linus Torvalds",
    "Barbara Liskov",
]
PRODUCTS = [
    ("MUG-01", "Enamel mug", "12.50"),
    ("TEE-02", "Logo T-shirt", "19.99"),
    ("BAG-03", "Tote bag", "9.00"),
]
DIGITAL = [("EBOOK-01", "Field guide (ebook)", "7.99"), ("LIC-02", "Pro licence, 1 year", "49.00")]
# Where the carriers scan the demo's parcels, in the order a parcel passes them.
SCANS = {
    ShipmentStatus.HANDED_OVER: "Springfield warehouse",
    ShipmentStatus.IN_TRANSIT: "Memphis hub",
    ShipmentStatus.OUT_FOR_DELIVERY: "Springfield delivery station",
    ShipmentStatus.DELIVERED: "Springfield",
    ShipmentStatus.DELIVERY_FAILED: "Springfield",
    ShipmentStatus.RETURNED: "Springfield warehouse",
}
# Tracking updates and status reports: they complete or cancel nothing, so the demo waits
# for them to be applied instead.
NEWS = (EventType.FULFILLMENT_TRACKING_UPDATED, EventType.SHIPMENT_STATUS_REPORTED)


@dataclass(frozen=True)
class Send:
    """One input event to publish (or, with `raw`, bytes that break the contract)."""

    event_type: EventType
    order_id: str
    data: WireModel | None = None
    event_id: str | None = None
    raw: tuple[Topic, bytes | None, bytes] | None = None


@dataclass
class Phase:
    """Events sent together, and the outputs they lead to, awaited before the next phase."""

    sends: list[Send] = field(default_factory=list)
    # Orders with a request that must be held for payment before the next phase.
    wait_held: list[str] = field(default_factory=list)
    completes: int = 0
    cancels: int = 0

    def news_ids(self) -> dict[str, set[str]]:
        """The ids of this phase's tracking updates and status reports, by order."""
        found: dict[str, set[str]] = {}
        for send in self.sends:
            if send.event_type in NEWS and send.event_id is not None:
                found.setdefault(send.order_id, set()).add(send.event_id)
        return found


@dataclass
class Plan:
    phases: list[Phase]
    orders: list[str]
    expected_dead_letters: int
    examples: dict[str, str]

    @property
    def expected_completed(self) -> int:
        return sum(phase.completes for phase in self.phases)

    @property
    def expected_cancelled(self) -> int:
        return sum(phase.cancels for phase in self.phases)

    @property
    def expected_news(self) -> int:
        return sum(len(ids) for phase in self.phases for ids in phase.news_ids().values())


def _address(rng: random.Random, name: str) -> Address:
    return Address(
        name=name,
        line1=f"{rng.randint(1, 200)} Market St",
        city="Springfield",
        postal_code="12345",
        country="US",
    )


class Builder:
    """Makes orders with ids unique to one demo run."""

    def __init__(self, run: str, seed: int = 7) -> None:
        self.run = run
        self.rng = random.Random(seed)
        self.count = 0

    def order(self, digital: bool = False, quantity: int = 1) -> tuple[str, OrderPlaced]:
        self.count += 1
        order_id = f"ord-{self.run}-{self.count:04d}"
        name = self.rng.choice(NAMES)
        sku, title, price = self.rng.choice(DIGITAL if digital else PRODUCTS)
        line = OrderLine(
            line_id="L1",
            sku=sku,
            title=title,
            quantity=quantity,
            unit_price=price,
            delivery=Delivery.DIGITAL if digital else Delivery.SHIPMENT,
        )
        email = f"{name.split()[0].lower()}.{self.count}@example.com"
        return order_id, OrderPlaced(
            order_number=f"#{self.run[:4].upper()}{self.count:04d}",
            customer=Customer(name=name, email=email),
            currency="USD",
            total=str(Decimal(price) * quantity),
            lines=[line],
            shipping_address=None if digital else _address(self.rng, name),
        )

    def shipment(self) -> Shipment:
        carrier, url = self.rng.choice(CARRIERS)
        awb = f"{self.rng.randint(10**9, 10**10 - 1)}"
        return Shipment(
            carrier=carrier, tracking_number=awb, tracking_url=url.format(awb) if url else None
        )

    def corrected(self, fulfillment_id: str, shipment: Shipment) -> FulfillmentTrackingUpdated:
        """The same carrier, another airway bill (and its link): a typo put right."""
        awb = f"{self.rng.randint(10**9, 10**10 - 1)}"
        url = dict(CARRIERS)[shipment.carrier]
        return FulfillmentTrackingUpdated(
            fulfillment_id=fulfillment_id,
            tracking_number=awb,
            tracking_url=url.format(awb) if url else None,
        )


def _paid(order_id: str, placed: OrderPlaced) -> Send:
    data = PaymentCaptured(
        payment_id=f"pay-{order_id}", amount=placed.total, currency=placed.currency, method="card"
    )
    return Send(EventType.PAYMENT_CAPTURED, order_id, data)


def _request(order_id: str, fulfillment_id: str, **fields: Any) -> Send:
    return Send(
        EventType.FULFILLMENT_REQUESTED,
        order_id,
        FulfillmentRequested(fulfillment_id=fulfillment_id, **fields),
    )


def _report(
    order_id: str,
    fulfillment_id: str,
    status: ShipmentStatus,
    at: datetime,
    note: str | None = None,
) -> Send:
    """A carrier's scan of a parcel at `at`, where the demo's parcels pass with that status."""
    # Validated from JSON-like input: `happened_at` takes RFC 3339 text only, not a datetime.
    data = ShipmentStatusReported.model_validate(
        {
            "fulfillment_id": fulfillment_id,
            "status": status.value,
            "happened_at": format_time(at),
            "location": SCANS[status],
            "note": note,
        }
    )
    return Send(EventType.SHIPMENT_STATUS_REPORTED, order_id, data)


def _scans(
    order_id: str, fulfillment_id: str, start: datetime, statuses: Iterable[ShipmentStatus]
) -> list[Send]:
    """One report per status, a few hours apart in the order given."""
    return [
        _report(order_id, fulfillment_id, status, start + timedelta(hours=5 * step))
        for step, status in enumerate(statuses, start=1)
    ]


def build(run: str, scale: int = 1, start: datetime | None = None) -> Plan:
    """The demo's traffic: physical, digital, split, redo, cancelled, late payments, what a
    web store does after shipping, duplicates, garbage. `start`: when the carriers' scans begin."""
    make = Builder(run)
    first, second, third = Phase(), Phase(), Phase()
    orders: list[str] = []
    examples: dict[str, str] = {}

    for index in range(40 * scale):  # shipped with a carrier and airway bill; a quarter paid late
        order_id, placed = make.order()
        request = _request(
            order_id, f"ful-{order_id}-1", shipment=make.shipment(), requested_by="warehouse"
        )
        placed_send = Send(EventType.ORDER_PLACED, order_id, placed)
        orders.append(order_id)
        if index % 4 == 0:
            # Paid only once the request is seen held for payment: the example shows a hold.
            first.sends += [placed_send, request]
            first.wait_held.append(order_id)
            second.sends.append(_paid(order_id, placed))
            second.completes += 1
            examples.setdefault("payment after the request", order_id)
        else:
            first.sends += [placed_send, _paid(order_id, placed), request]
            first.completes += 1

    for _ in range(15 * scale):  # digital goods: credentials delivered once paid
        order_id, placed = make.order(digital=True)
        access = Distribution(
            line_id="L1",
            access_url=f"https://downloads.example.com/{order_id}",
            credentials=Credentials(
                username=order_id, token=f"tok-{make.rng.getrandbits(64):016x}"
            ),
            instructions="Sign in with the token within 30 days.",
        )
        first.sends += [
            Send(EventType.ORDER_PLACED, order_id, placed),
            _paid(order_id, placed),
            _request(order_id, f"ful-{order_id}-1", distributions=[access]),
        ]
        orders.append(order_id)
        first.completes += 1
        examples.setdefault("digital delivery", order_id)

    for _ in range(5 * scale):  # fulfilled in two parts
        order_id, placed = make.order(quantity=3)
        first.sends += [
            Send(EventType.ORDER_PLACED, order_id, placed),
            _paid(order_id, placed),
            _request(
                order_id,
                f"ful-{order_id}-1",
                lines=[RequestedLine(line_id="L1", quantity=2)],
                shipment=make.shipment(),
            ),
        ]
        second.sends.append(_request(order_id, f"ful-{order_id}-2", shipment=make.shipment()))
        orders.append(order_id)
        first.completes += 1
        second.completes += 1
        examples.setdefault("fulfilled in two parts", order_id)

    for _ in range(5 * scale):  # wrong parcel: cancel the fulfillment, fulfil again
        order_id, placed = make.order()
        first.sends += [
            Send(EventType.ORDER_PLACED, order_id, placed),
            _paid(order_id, placed),
            _request(order_id, f"ful-{order_id}-1", shipment=make.shipment()),
        ]
        second.sends.append(
            Send(
                EventType.FULFILLMENT_CANCEL_REQUESTED,
                order_id,
                FulfillmentCancelRequested(
                    fulfillment_id=f"ful-{order_id}-1", reason="wrong parcel"
                ),
            )
        )
        third.sends.append(_request(order_id, f"ful-{order_id}-2", shipment=make.shipment()))
        orders.append(order_id)
        first.completes += 1
        second.cancels += 1
        third.completes += 1
        examples.setdefault("cancel fulfillment, fulfil again", order_id)

    for _ in range(5 * scale):  # never paid, cancelled; a late request is refused
        order_id, placed = make.order()
        first.sends += [
            Send(EventType.ORDER_PLACED, order_id, placed),
            _request(order_id, f"ful-{order_id}-1"),
        ]
        first.wait_held.append(order_id)
        second.sends.append(
            Send(
                EventType.ORDER_CANCEL_REQUESTED,
                order_id,
                OrderCancelRequested(reason="payment failed"),
            )
        )
        third.sends.append(_request(order_id, f"ful-{order_id}-2"))
        orders.append(order_id)
        second.cancels += 1
        third.cancels += 1
        examples.setdefault("order cancelled", order_id)

    phases = [first, second, third]
    start = start or datetime.now(UTC).replace(microsecond=0)
    _after_shipping(make, phases, orders, examples, scale, start)
    serial = 0
    for phase in phases:  # every event gets its id now, so a re-send is a true duplicate
        for index, send in enumerate(phase.sends):
            serial += 1
            phase.sends[index] = replace(send, event_id=f"evt-{run}-{serial:05d}")
    first.sends += make.rng.sample(first.sends, len(first.sends) // 10)
    garbage = _malformed(run)
    first.sends += garbage
    return Plan(phases, orders, len(garbage), examples)


def _after_shipping(
    make: Builder,
    phases: list[Phase],
    orders: list[str],
    examples: dict[str, str],
    scale: int,
    start: datetime,
) -> None:
    """The web store after shipping (contract 1.1): the airway bill corrected, the parcel
    handed over, in transit and delivered; parcels partly delivered; failed and returned."""
    for index in range(6 * scale):
        order_id = _web_store_order(make, phases, start, paid_late=index % 3 == 0)
        orders.append(order_id)
        examples.setdefault(
            "web store: held for payment, airway bill corrected, delivered (reports out of order)",
            order_id,
        )
    for _ in range(3 * scale):
        orders.append(_partly_delivered_order(make, phases, start))
        examples.setdefault("partially delivered", orders[-1])
    for _ in range(3 * scale):
        orders.append(_returned_order(make, phases, start))
        examples.setdefault("delivery failed, parcel returned", orders[-1])


def _web_store_order(make: Builder, phases: list[Phase], start: datetime, paid_late: bool) -> str:
    """Shipped with a carrier and airway bill, the bill corrected, handed over to the carrier,
    in transit, delivered; the delivery scan overtakes the transit scan on the way."""
    first, second, third = phases
    order_id, placed = make.order()
    fulfillment_id, shipment = f"ful-{order_id}-1", make.shipment()
    request = _request(order_id, fulfillment_id, shipment=shipment, requested_by="web store")
    first.sends += [Send(EventType.ORDER_PLACED, order_id, placed), request]
    if paid_late:  # by bank transfer: the request waits, held, for the money
        first.wait_held.append(order_id)
        second.sends.append(_paid(order_id, placed))
        second.completes += 1
    else:
        first.sends.append(_paid(order_id, placed))
        first.completes += 1
    correction = make.corrected(fulfillment_id, shipment)
    scans = _scans(
        order_id,
        fulfillment_id,
        start,
        [ShipmentStatus.HANDED_OVER, ShipmentStatus.IN_TRANSIT, ShipmentStatus.DELIVERED],
    )
    second.sends += [Send(EventType.FULFILLMENT_TRACKING_UPDATED, order_id, correction), scans[0]]
    third.sends += [scans[2], scans[1]]
    return order_id


def _partly_delivered_order(make: Builder, phases: list[Phase], start: datetime) -> str:
    """Two parcels of one order: one delivered, the other still in transit."""
    first, second, third = phases
    order_id, placed = make.order(quantity=2)
    first.sends += [Send(EventType.ORDER_PLACED, order_id, placed), _paid(order_id, placed)]
    routes = (
        [ShipmentStatus.HANDED_OVER, ShipmentStatus.IN_TRANSIT, ShipmentStatus.DELIVERED],
        [ShipmentStatus.HANDED_OVER, ShipmentStatus.IN_TRANSIT],
    )
    for parcel, route in enumerate(routes, start=1):
        fulfillment_id = f"ful-{order_id}-{parcel}"
        one = [RequestedLine(line_id="L1", quantity=1)]
        first.sends.append(_request(order_id, fulfillment_id, lines=one, shipment=make.shipment()))
        first.completes += 1
        scans = _scans(order_id, fulfillment_id, start, route)
        second.sends.append(scans[0])
        third.sends += scans[1:]
    return order_id


def _returned_order(make: Builder, phases: list[Phase], start: datetime) -> str:
    """Nobody home: the delivery fails and the parcel goes back; the return is reported first."""
    first, second, third = phases
    order_id, placed = make.order()
    fulfillment_id = f"ful-{order_id}-1"
    first.sends += [
        Send(EventType.ORDER_PLACED, order_id, placed),
        _paid(order_id, placed),
        _request(order_id, fulfillment_id, shipment=make.shipment()),
    ]
    first.completes += 1
    route = [ShipmentStatus.HANDED_OVER, ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY]
    second.sends += _scans(order_id, fulfillment_id, start, route)
    later = start + timedelta(hours=5 * (len(route) + 1))
    failed = _report(
        order_id, fulfillment_id, ShipmentStatus.DELIVERY_FAILED, later, "nobody home, card left"
    )
    back = _report(order_id, fulfillment_id, ShipmentStatus.RETURNED, later + timedelta(days=2))
    third.sends += [back, failed]
    return order_id


def _malformed(run: str) -> list[Send]:
    placed_topic = Topic.ORDERS_PLACED
    wrong_type = b'{"specversion":"1.0","id":"bad-1","source":"urn:demo","type":"payment.captured","subject":"x","time":"2026-11-21T10:00:00Z","data":{}}'
    bad_currency = (
        b'{"specversion":"1.0","id":"bad-2","source":"urn:demo","type":"order.placed","subject":"ord-bad","time":"2026-11-21T10:00:00Z",'
        b'"data":{"order_number":"#X","customer":{"name":"A","email":"a@example.com"},"currency":"usd","total":"1","lines":[]}}'
    )
    return [
        Send(
            EventType.ORDER_PLACED,
            "",
            raw=(placed_topic, f"ord-{run}-garbage".encode(), b"<xml>not json</xml>"),
        ),
        Send(EventType.ORDER_PLACED, "", raw=(placed_topic, b"x", wrong_type)),
        Send(EventType.ORDER_PLACED, "", raw=(placed_topic, b"ord-bad", bad_currency)),
        Send(
            EventType.ORDER_PLACED,
            "",
            raw=(
                placed_topic,
                b"someone-else",
                wrong_type.replace(b"payment.captured", b"order.placed"),
            ),
        ),
    ]
