"""Outputs saved but never sent (a crash between save and publish) are recovered, not lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet

from config import Settings
from consumers.outputs import KafkaOutputs, Message
from consumers.pipeline import Pipeline
from consumers.relay import relay_once
from consumers.sealing import Sealer
from consumers.topics import ensure_topics
from schemas.names import EventType, Topic
from store.orders import OrderStore, connect
from tests.conftest import Infra, Names
from tests.factories import Record, envelope, placed_data

pytestmark = pytest.mark.integration


class Crash(BaseException):
    """Stands for the process dying at this point (no handler of the pipeline may catch it)."""


class CrashingOutputs:
    """Real Kafka outputs that die before sending, the first `crashes` times."""

    def __init__(self, real: KafkaOutputs, crashes: int) -> None:
        self.real = real
        self.crashes = crashes

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        if messages and self.crashes > 0:
            self.crashes -= 1
            raise Crash
        return await self.real.send(messages)


@pytest.fixture
async def settings(infra: Infra, names: Names) -> AsyncIterator[Settings]:
    settings = Settings(
        infra.kafka_bootstrap,
        infra.mongodb_uri,
        names.database,
        names.prefix,
        names.group_id,
        partitions=2,
    )
    await ensure_topics(settings)
    yield settings
    client = connect(infra.mongodb_uri)
    await client.drop_database(names.database)
    await client.close()


def record(
    settings: Settings, event_type: EventType, topic: Topic, order_id: str, data: Mapping[str, Any]
) -> Record:
    value = json.dumps(envelope(event_type, order_id, dict(data))).encode()
    return Record(settings.topic(topic), 0, 0, order_id.encode(), value)


async def statuses_published(settings: Settings) -> list[str]:
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.ORDERS_STATUS_CHANGED),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [
            json.loads(r.value)["data"]["to_status"]
            for records in batches.values()
            for r in records
        ]
    finally:
        await consumer.stop()


async def test_relay_publishes_an_outbox_a_crash_left_unsent(settings: Settings) -> None:
    real = KafkaOutputs(settings)
    await real.start()
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    sealer = Sealer(Fernet.generate_key().decode())
    try:
        crashing = Pipeline(settings, store, CrashingOutputs(real, crashes=1), sealer)
        with pytest.raises(Crash):
            await crashing.handle(
                [
                    record(
                        settings,
                        EventType.ORDER_PLACED,
                        Topic.ORDERS_PLACED,
                        "ord-r",
                        placed_data(),
                    )
                ]
            )
        saved = await store.load("ord-r")
        assert saved is not None and saved.outbox and not await store.is_settled(saved)

        sent = await relay_once(Pipeline(settings, store, real, sealer), grace=0)
        assert sent == 1
        assert await store.is_settled(saved)
        assert await statuses_published(settings) == ["awaiting_payment"]
    finally:
        await real.stop()
        await store.client.close()


async def test_next_batch_for_the_order_carries_unsent_outputs_forward(settings: Settings) -> None:
    real = KafkaOutputs(settings)
    await real.start()
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    sealer = Sealer(Fernet.generate_key().decode())
    try:
        with pytest.raises(Crash):
            await Pipeline(settings, store, CrashingOutputs(real, 1), sealer).handle(
                [
                    record(
                        settings,
                        EventType.ORDER_PLACED,
                        Topic.ORDERS_PLACED,
                        "ord-c",
                        placed_data(),
                    )
                ]
            )
        payment = {"payment_id": "p1", "amount": "20.00", "currency": "USD"}
        await Pipeline(settings, store, real, sealer).handle(
            [
                record(
                    settings, EventType.PAYMENT_CAPTURED, Topic.PAYMENTS_CAPTURED, "ord-c", payment
                )
            ]
        )
        order = await store.load("ord-c")
        assert order is not None and await store.is_settled(order)
        assert await store.unsent(saved_before=order.updated_at.replace(year=2100)) == []  # type: ignore[union-attr]
        assert await statuses_published(settings) == ["awaiting_payment", "unfulfilled"]
    finally:
        await real.stop()
        await store.client.close()
