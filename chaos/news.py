"""Tracking updates and status reports for `fulfillment chaos` (contract 1.1).

Their final effect must not depend on arrival order, which the run does not control (a send
the broker refused is sent again later): reports are ordered by `happened_at` whatever
order they come in, and the tracking updates of one fulfillment each give a different field,
so that they commute. Few distinct times make ties, and some times carry another offset
for the same instants.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from chaos.oracle import Input
from producers.publisher import cloud_event
from schemas.events import FulfillmentTrackingUpdated, ShipmentStatusReported, WireModel
from schemas.names import TYPE_TOPIC, EventType, ShipmentStatus

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
JAKARTA = timezone(timedelta(hours=7))
LOCATIONS = (None, "Memphis hub", "Springfield [dock 3]", "Köln Sortierzentrum")


def _tracking_number(rng: random.Random) -> str:
    return f"AWB-{rng.randrange(10**9):09d}"


def _carrier(rng: random.Random) -> str:
    return rng.choice(("UPS", "JNE", "PostNL"))


def _tracking_url(rng: random.Random) -> str:
    return rng.choice(("", "https://track.example/p"))  # "" removes the link


# Each field at most once per fulfillment, so that its updates commute.
TRACKING_FIELDS: tuple[tuple[str, Callable[[random.Random], str]], ...] = (
    ("tracking_number", _tracking_number),
    ("carrier", _carrier),
    ("tracking_url", _tracking_url),
)


def shipment_news(order_id: str, request: bytes, rng: random.Random, rate: float) -> list[Input]:
    """For `rate` of the orders, a few reports and updates about the fulfillment `request`
    asks for: on a shipment they are applied, on a digital-only one refused."""
    if rng.random() >= rate:
        return []
    data = json.loads(request)["data"]
    fulfillment_id: str = data["fulfillment_id"]
    ships = "shipment" in data
    reports = rng.randint(1, 4) if ships else 1
    news = [_report(fulfillment_id, rng) for _ in range(reports)]
    fields = rng.sample(TRACKING_FIELDS, rng.randint(0, len(TRACKING_FIELDS)) if ships else 1)
    news += [
        (
            EventType.FULFILLMENT_TRACKING_UPDATED,
            FulfillmentTrackingUpdated.model_validate(
                {"fulfillment_id": fulfillment_id, name: value(rng)}
            ),
        )
        for name, value in fields
    ]
    rng.shuffle(news)
    return [_record(order_id, index, *item) for index, item in enumerate(news)]


def mixed_in(events: list[Input], news: list[Input], rng: random.Random) -> list[Input]:
    """`news` at random places among `events`."""
    mixed = list(events)
    for item in news:
        mixed.insert(rng.randint(0, len(mixed)), item)
    return mixed


def _report(fulfillment_id: str, rng: random.Random) -> tuple[EventType, WireModel]:
    moment = START + timedelta(hours=rng.randrange(4))
    # The same instant in another offset: reports compare instants, not text.
    written = moment.astimezone(JAKARTA) if rng.random() < 0.3 else moment
    data = ShipmentStatusReported.model_validate(
        {
            "fulfillment_id": fulfillment_id,
            "status": rng.choice(list(ShipmentStatus)).value,
            "happened_at": written.isoformat(),
            "location": rng.choice(LOCATIONS),
            "note": "scanned by chaos" if rng.random() < 0.2 else None,
        }
    )
    return EventType.SHIPMENT_STATUS_REPORTED, data


def _record(order_id: str, index: int, event_type: EventType, data: WireModel) -> Input:
    event = cloud_event(event_type, order_id, data, "urn:chaos", f"{order_id}-news-{index}")
    return Input(TYPE_TOPIC[event_type], order_id.encode(), json.dumps(event).encode())
