"""Realistic order traffic for the demo: every workflow this product exists for, in phases."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from schemas.events import (
    Address,
    Credentials,
    Customer,
    Distribution,
    FulfillmentCancelRequested,
    FulfillmentRequested,
    OrderCancelRequested,
    OrderLine,
    OrderPlaced,
    PaymentCaptured,
    RequestedLine,
    Shipment,
    WireModel,
)
from schemas.names import Delivery, EventType, Topic

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
    wait_pending: list[str] = field(default_factory=list)
    completes: int = 0
    cancels: int = 0


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


def build(run: str, scale: int = 1) -> Plan:
    """The demo's traffic: physical, digital, split, redo, cancelled, late payments, duplicates, garbage."""
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
        late = index % 4 == 0
        first.sends += (
            [placed_send, request, _paid(order_id, placed)]
            if late
            else [placed_send, _paid(order_id, placed), request]
        )
        orders.append(order_id)
        first.completes += 1
        if late:
            examples.setdefault("payment after the request", order_id)

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
        first.wait_pending.append(order_id)
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
    serial = 0
    for phase in phases:  # every event gets its id now, so a re-send is a true duplicate
        for index, send in enumerate(phase.sends):
            serial += 1
            phase.sends[index] = replace(send, event_id=f"evt-{run}-{serial:05d}")
    first.sends += make.rng.sample(first.sends, len(first.sends) // 10)
    garbage = _malformed(run)
    first.sends += garbage
    return Plan(phases, orders, len(garbage), examples)


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
