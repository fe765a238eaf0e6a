"""The embeddable publisher refuses, before sending, an event the worker would dead-letter."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from pydantic import ValidationError

from config import Settings
from producers.publisher import EventTooLarge, FulfillmentPublisher, PublisherClosed
from schemas.cloudevents import cloud_event
from schemas.events import Credentials, Distribution, FulfillmentRequested, OrderPlaced
from schemas.limits import MAX_INPUT_BYTES, MAX_ITEMS, MAX_RECORD_BYTES
from schemas.names import EventType
from tests.factories import line, placed_data

REQUEST = FulfillmentRequested(fulfillment_id="ful-1")


@pytest.mark.parametrize(
    ("order_id", "source", "envelope"),
    [
        ("", "urn:shop", {}),
        ("o" * 129, "urn:shop", {}),
        ("ord-1", "", {}),
        ("ord-1", "urn:shop", {"event_id": "x" * 300}),
    ],
    ids=["empty order id", "order id too long", "empty source", "event id too long"],
)
async def test_an_envelope_the_worker_would_refuse_is_refused_before_anything_is_sent(
    order_id: str, source: str, envelope: dict[str, Any]
) -> None:
    # Never entered: an event that got past validation would fail on the missing producer.
    publisher = FulfillmentPublisher(Settings(), source=source)
    with pytest.raises(ValidationError):
        await publisher.publish(EventType.FULFILLMENT_REQUESTED, order_id, REQUEST, **envelope)


async def test_a_valid_event_gets_past_validation_to_the_producer() -> None:
    publisher = FulfillmentPublisher(Settings(), source="urn:shop")
    with pytest.raises(PublisherClosed, match="inside `async with`"):
        await publisher.fulfillment_requested("ord-1", REQUEST)


async def test_an_event_above_the_contracts_size_limit_is_refused_before_anything_is_sent() -> None:
    # Each part is valid; together they are over 1 MiB, which the worker would dead-letter.
    data = placed_data([line(f"L{i}", 1, "shipment") for i in range(MAX_ITEMS)])
    for each in data["lines"]:
        each["title"] = "T" * 1000
    publisher = FulfillmentPublisher(Settings(), source="urn:shop")
    with pytest.raises(EventTooLarge, match="above the 1,000,000 a Kafka record may carry"):
        await publisher.order_placed("ord-1", OrderPlaced.model_validate(data))


async def test_an_event_the_worker_takes_but_no_kafka_record_could_carry_is_too_large() -> None:
    # Under the worker's 1 MiB, over what a record with its key and header may be: the Kafka
    # client would refuse it unsent, and no resend could help.
    data = placed_data([line(f"L{i}", 1, "shipment") for i in range(MAX_ITEMS)])
    for title in range(700, 1001):
        for each in data["lines"]:
            each["title"] = "T" * title
        event = cloud_event(EventType.ORDER_PLACED, "ord-1", OrderPlaced.model_validate(data), "s")
        if MAX_RECORD_BYTES < len(json.dumps(event)) < MAX_INPUT_BYTES:
            break
    else:
        pytest.fail("no title length puts the event between the two limits")
    publisher = FulfillmentPublisher(Settings(), source="s")
    with pytest.raises(EventTooLarge, match="a Kafka record may carry"):
        await publisher.order_placed("ord-1", OrderPlaced.model_validate(data))


@pytest.mark.parametrize("password", [12345, "SUPERSECRET-" * 100], ids=["wrong type", "too long"])
def test_a_refused_credential_is_never_quoted_in_the_error(password: object) -> None:
    with pytest.raises(ValidationError) as refused:
        Credentials(password=password)  # type: ignore[arg-type]
    assert "12345" not in str(refused.value)
    assert "SUPERSECRET" not in str(refused.value)
    assert "password" in str(refused.value)  # the field is still named


async def test_a_request_refused_before_sending_never_quotes_its_credentials() -> None:
    # Smuggled past the models' own checks, as an integrator's model_copy can.
    secret = {"credentials": {"password": "S3CR3T"}}  # no line_id
    request = REQUEST.model_copy(update={"distributions": [secret]})
    publisher = FulfillmentPublisher(Settings(), source="urn:shop")
    with warnings.catch_warnings(record=True) as warned, pytest.raises(ValidationError) as refused:
        warnings.simplefilter("always")
        await publisher.publish(EventType.FULFILLMENT_REQUESTED, "ord-1", request)
    assert "S3CR3T" not in str(refused.value)
    assert not [w for w in warned if "S3CR3T" in str(w.message)]


def test_an_events_repr_leaves_its_credentials_out() -> None:
    given = Credentials(username="ann", password="SUPERSECRET1", token="tok-SUPERSECRET2")
    shown = repr(Distribution(line_id="L1", credentials=given))
    assert "SUPERSECRET" not in shown
    assert "ann" not in shown
