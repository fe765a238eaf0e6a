"""Valid but extreme orders through a real worker: every one of them ends fulfilled.

Hypothesis builds orders at the edges of the contract (up to 1,000 lines, 1,000-character texts
of arbitrary Unicode with emoji, right-to-left text and combining marks, the largest and smallest
amounts, quantities up to 1,000,000, times from year 1 to 9999, many captures) and sends each
one's `order.placed`, `payment.captured` and `fulfillment.requested` events to one worker.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as statistic
from hypothesis import strategies as st

from consumers.decode import Rejection, decode
from schemas.iso import COUNTRIES
from schemas.names import EventType, OrderStatus, Topic
from tests.e2e.harness import Harness, Raw

pytestmark = pytest.mark.e2e

# Any code point but NUL and the surrogates (which no UTF-8 text can carry).
CHARACTERS = st.characters(codec="utf-8", blacklist_characters="\x00")
# Sequences a single code point strategy rarely finds.
SPICE = st.sampled_from(
    [
        "👩\u200d👩\u200d👧\u200d👦",  # a family: emoji joined with ZWJ
        "🇺🇳",  # a flag: two regional indicators
        "שלום עולם",  # Hebrew, right to left
        "مرحبا بالعالم",  # Arabic, right to left
        "\u202eRTL override\u202c",
        "e\u0301\u0327\u0308",  # a letter with stacked combining marks
        "\u0301",  # a combining mark with nothing to combine with
        "\ufeff\u200b\u2060",  # BOM, zero-width space, word joiner
        "\U0001d518\U0001d52b\U0001d526 \U0001d7d9\U0001d7da",  # outside the basic multilingual plane
        '"quotes" \\ back\\slash </script> {"json": true}',
        "\t\r\n\x1f\x7f",
    ]
)
MONEY = st.one_of(
    st.sampled_from(["0", "0.000001", "1", "999999999999999", "999999999999999.999999"]),
    st.from_regex(r"\A[0-9]{1,15}(\.[0-9]{1,6})?\Z"),
)
QUANTITY = st.one_of(st.sampled_from([1, 1_000_000]), st.integers(1, 1_000_000))
CURRENCY = st.sampled_from(["USD", "EUR", "JPY", "KWD", "BHD", "CLF", "XAU"])
COUNTRY = st.sampled_from(sorted(COUNTRIES))
# The contract's e-mail rule forbids only "@" and white space around the one "@".
EMAIL_LOCAL_PART = st.text(
    st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="@"),
    min_size=1,
    max_size=60,
).filter(lambda text: not any(character.isspace() for character in text))


def texts(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    """Texts of `min_size` (0 or 1) to `max_size` characters, often exactly `max_size` long."""
    piece = st.one_of(st.text(CHARACTERS, min_size=1, max_size=12), SPICE)
    joined = st.lists(piece, min_size=1, max_size=6).map("".join)
    short = joined.map(lambda text: text[:max_size])
    longest = joined.map(lambda text: (text * (max_size // len(text) + 1))[:max_size])
    some = st.one_of(short, longest)
    return st.one_of(st.just(""), some) if min_size == 0 else some


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """An RFC 3339 time from year 1 to 9999 whose UTC instant is within those years too."""
    instant = draw(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30, 23, 59, 59))
    )
    minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    local = instant.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=minutes)))
    text = local.isoformat()
    return text.replace("+00:00", "Z") if minutes == 0 and draw(st.booleans()) else text


@st.composite
def addresses(draw: st.DrawFn) -> dict[str, Any]:
    address = {
        "name": draw(texts(1000)),
        "line1": draw(texts(1000)),
        "city": draw(texts(1000)),
        "postal_code": draw(texts(1000)),
        "country": draw(COUNTRY),
    }
    for field in ("line2", "region"):
        if (value := draw(optional(texts(1000, min_size=0)))) is not None:
            address[field] = value
    return address


@dataclass
class Order:
    order_id: str
    records: list[Raw]
    credentials: dict[str, dict[str, str]]  # line_id -> credentials sent


@st.composite
def extreme_orders(draw: st.DrawFn) -> Order:
    order_id = f"ord-{uuid.uuid4().hex[:8]}-{draw(texts(100))}"
    count = draw(st.one_of(st.integers(1, 4), st.sampled_from([60, 400, 1000])))
    statistic(f"lines: {'1-4' if count <= 4 else count}")
    # Long texts on a few lines; on many lines, short ones, so the input stays under 1 MiB.
    text = texts(1000) if count <= 4 else texts(12)
    # Hypothesis draws a few line patterns; many lines repeat them under unique ids.
    patterns: list[dict[str, Any]] = [
        {
            "sku": draw(text),
            "title": draw(text),
            "quantity": draw(QUANTITY),
            "unit_price": draw(MONEY),
            "delivery": draw(st.sampled_from(["shipment", "digital"])),
        }
        for _ in range(min(count, 4))
    ]
    suffix = draw(texts(20))
    lines: list[dict[str, Any]] = [
        {"line_id": f"{index}·{suffix}", **patterns[index % len(patterns)]}
        for index in range(count)
    ]
    currency = draw(CURRENCY)
    total = draw(MONEY)
    customer: dict[str, Any] = {
        "name": draw(texts(1000)),
        "email": draw(EMAIL_LOCAL_PART) + "@example.com",
    }
    if (phone := draw(optional(texts(1000, min_size=0)))) is not None:
        customer["phone"] = phone
    placed: dict[str, Any] = {
        "order_number": draw(texts(1000)),
        "customer": customer,
        "currency": currency,
        "total": total,
        "lines": lines,
        "platform_note": draw(texts(1000)),  # unknown data fields are accepted and ignored
    }
    if any(line["delivery"] == "shipment" for line in lines) or draw(st.booleans()):
        placed["shipping_address"] = draw(addresses())
    if draw(st.booleans()):
        placed["billing_address"] = draw(addresses())

    # Many captures; the last one alone covers the total, so the order ends paid.
    amounts = [*draw(st.lists(MONEY, max_size=19)), total]
    captures = [
        {
            "payment_id": f"{index}·{draw(texts(100))}",
            "amount": amount,
            "currency": currency,
            **({"method": draw(texts(1000))} if draw(st.booleans()) else {}),
        }
        for index, amount in enumerate(amounts)
    ]

    request: dict[str, Any] = {"fulfillment_id": f"ful·{draw(texts(120))}"}
    if draw(st.booleans()):
        request["lines"] = [
            {"line_id": line["line_id"], "quantity": line["quantity"]} for line in lines
        ]
    if draw(st.booleans()):
        request["shipment"] = {"carrier": draw(texts(1000)), "tracking_number": draw(texts(1000))}
        if (url := draw(optional(texts(1000, min_size=0)))) is not None:
            request["shipment"]["tracking_url"] = url
    digital = [line["line_id"] for line in lines if line["delivery"] == "digital"][:5]
    credentials: dict[str, dict[str, str]] = {}
    if digital:
        distributions = []
        for line_id in digital:
            secret = {
                "username": draw(texts(1000)),
                "password": draw(texts(1000)),
                "token": draw(texts(1000)),
            }
            credentials[line_id] = secret
            distributions.append(
                {
                    "line_id": line_id,
                    "access_url": draw(texts(1000)),
                    "instructions": draw(texts(1000)),
                    "credentials": secret,
                }
            )
        request["distributions"] = distributions
    if (by := draw(optional(texts(1000, min_size=0)))) is not None:
        request["requested_by"] = by

    def cloudevent(event_type: EventType, data: dict[str, Any], number: int) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"evt-{uuid.uuid4().hex}-{number}",
            "source": draw(texts(1000)),
            "type": event_type.value,
            "subject": order_id,
            "time": draw(rfc3339()),
            "datacontenttype": "application/json",
            "comment": draw(texts(100)),  # unknown attributes are accepted and ignored
            "data": data,
        }

    records = [
        Raw.event(Topic.ORDERS_PLACED, cloudevent(EventType.ORDER_PLACED, placed, 0)),
        *(
            Raw.event(Topic.PAYMENTS_CAPTURED, cloudevent(EventType.PAYMENT_CAPTURED, capture, n))
            for n, capture in enumerate(captures, 1)
        ),
        Raw.event(
            Topic.FULFILLMENTS_REQUESTED, cloudevent(EventType.FULFILLMENT_REQUESTED, request, 99)
        ),
    ]
    return Order(order_id, records, credentials)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=extreme_orders())
async def test_valid_but_extreme_orders_are_fulfilled(harness: Harness, order: Order) -> None:
    for record in order.records:  # the generator makes only what the contract accepts
        decoded = decode(record.topic, record.key, record.value)
        assert not isinstance(decoded, Rejection), decoded
    async with asyncio.timeout(60):
        pending = [
            await harness.producer.send(
                harness.settings.topic(record.topic), record.value, key=record.key
            )
            for record in order.records
        ]
        await asyncio.gather(*pending)
        await harness.completes([order.order_id])

    [completed] = {
        c["id"]: c
        for c in harness.seen(Topic.FULFILLMENTS_COMPLETED.value)
        if c["subject"] == order.order_id
    }.values()
    stored = await harness.order(order.order_id)
    assert stored.status is OrderStatus.FULFILLED
    assert all(line.fulfilled_quantity == line.quantity for line in stored.lines)
    assert {line["line_id"]: line["quantity"] for line in completed["data"]["lines"]} == {
        line.line_id: line.quantity for line in stored.lines
    }
    opened = {
        item["line_id"]: item.get("credentials")
        for item in completed["data"].get("distributions") or []
    }
    assert opened == order.credentials
