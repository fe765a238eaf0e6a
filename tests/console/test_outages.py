"""The console while the store or the broker is away or refusing: a readable page, one log line, no
traceback, and the next action works once the broker does."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from aiokafka import TopicPartition
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from config import Settings
from console.backend import LiveBackend, Unavailable
from console.queries import Page, Search
from consumers.outputs import partition_for
from schemas.events import PaymentCaptured
from schemas.names import EventType, Topic
from tests.conftest import Infra, Names
from tests.console.conftest import hidden
from tests.console.fakes import FakeBackend
from tests.integration.test_outputs_producer import published_ids


async def store_away(search: Search) -> Page:
    raise ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused")


def test_a_page_the_store_cannot_serve_says_so_with_503_and_logs_one_line(
    client: TestClient,
    backend: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(backend.orders, "search", store_away)
    with caplog.at_level(logging.WARNING):
        response = client.get("/orders")
    assert response.status_code == 503
    assert "The order store is not answering" in response.text
    assert "Nothing was sent" in response.text
    ours = [r for r in caplog.records if r.name == "console"]
    assert [r.getMessage() for r in ours] == [
        "the order store did not answer (ServerSelectionTimeoutError)"
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_a_fulfillment_form_the_store_could_not_take_is_shown_again_without_its_credentials(
    client: TestClient, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = "/orders/ord-paid/fulfill"
    page = client.get(action).text
    typed = {
        "csrf_token": hidden(page, "csrf_token", action),
        "nonce": hidden(page, "nonce", action),
        "qty-0": "1",
        "carrier": "DHL",
        "tracking_number": "AWB-TYPED-1",
        "password-0": "s3cret-typed",
    }
    stored = backend.orders.load

    async def store_away_now(order_id: str) -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused")

    monkeypatch.setattr(backend.orders, "load", store_away_now)
    response = client.post(action, data=typed)
    assert response.status_code == 503
    assert "What you typed is kept, except credentials" in response.text
    assert "s3cret-typed" not in response.text and backend.published == []
    monkeypatch.setattr(backend.orders, "load", stored)
    again = client.get(action).text
    assert 'value="AWB-TYPED-1"' in again and 'value="DHL"' in again
    assert "please enter them again" in again and "s3cret-typed" not in again
    # Shown once: the next opening starts from the order again.
    assert "AWB-TYPED-1" not in client.get(action).text


async def test_the_dead_letter_page_gives_up_on_a_hung_broker_within_seconds() -> None:
    # A broker that accepts connections and never answers: each request waits 8 s, not 40.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        settings = Settings(f"127.0.0.1:{hung.getsockname()[1]}", "mongodb://127.0.0.1:9")
        backend = LiveBackend(settings)
        started = time.monotonic()
        try:
            with pytest.raises(Unavailable, match="cannot reach Kafka"):
                await backend.dead_letter_counts()
        finally:
            await backend.close()
    assert time.monotonic() - started < 20


@pytest.mark.integration
async def test_an_action_after_the_broker_refused_the_publishers_state_goes_out_on_a_new_one(
    infra: Infra, names: Names
) -> None:
    # After a broker restart a producer can be refused for good (here: its sequence numbers put
    # out of step); each later click said "Kafka refused" until the console was restarted.
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    backend = LiveBackend(settings)
    capture = PaymentCaptured(amount="1.00", currency="EUR", payment_id="pay-1")
    try:
        await backend.publish(EventType.PAYMENT_CAPTURED, "ord-1", capture, "evt-1")
        publisher = backend._publisher
        assert publisher is not None and publisher._producer is not None
        topic = settings.topic(Topic.PAYMENTS_CAPTURED)
        partition = partition_for(b"ord-1", sorted(await publisher._producer.partitions_for(topic)))
        publisher._producer._txn_manager.increment_sequence_number(
            TopicPartition(topic, partition), 3
        )
        with pytest.raises(Unavailable, match="Kafka refused: OutOfOrderSequenceNumber"):
            await backend.publish(EventType.PAYMENT_CAPTURED, "ord-1", capture, "evt-2")
        await backend.publish(EventType.PAYMENT_CAPTURED, "ord-1", capture, "evt-2")
    finally:
        await backend.close()
    assert await published_ids(infra, topic) == ["evt-1", "evt-2"]


@pytest.mark.integration
async def test_an_action_whose_topics_the_broker_refuses_to_create_says_why_in_one_line(
    infra: Infra, names: Names
) -> None:
    settings = Settings(
        infra.kafka_bootstrap,
        infra.mongodb_uri,
        names.database,
        names.prefix,
        replication_factor=99,
    )
    backend = LiveBackend(settings)
    capture = PaymentCaptured(amount="1.00", currency="EUR", payment_id="pay-1")
    try:
        with pytest.raises(Unavailable, match=r"could not create topic .*[Rr]eplication factor"):
            await backend.publish(EventType.PAYMENT_CAPTURED, "ord-1", capture, "evt-1")
    finally:
        await backend.close()
