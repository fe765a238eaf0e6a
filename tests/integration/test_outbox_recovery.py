"""Outputs saved but never sent (a crash between save and publish) are recovered, not lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from config import Settings
from consumers.outputs import KafkaOutputs, Message
from consumers.pipeline import Pipeline, utc_now
from consumers.relay import relay_once
from consumers.sealing import Sealer
from consumers.topics import ensure_topics
from lifecycle import apply
from schemas.document import OrderDocument, OutboxMessage, PendingOutbox
from schemas.names import EventType, Topic
from store.orders import ABANDONED_AFTER, OrderStore, connect, encode
from tests.conftest import Infra, Names
from tests.factories import Record, envelope, placed, placed_data
from tests.topic_reading import read_topic

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
async def store(settings: Settings) -> AsyncIterator[OrderStore]:
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    yield store
    await store.client.close()


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
    topic = settings.topic(Topic.ORDERS_STATUS_CHANGED)
    records = await read_topic(settings.kafka_bootstrap, topic)
    return [json.loads(r.value)["data"]["to_status"] for r in records]


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


async def saved_order(store: OrderStore, order_id: str) -> OrderDocument:
    """An order saved at version 1 with an output, its marker cleared as after publishing."""
    order = OrderDocument(_id=order_id)
    applied = apply(order, placed(order_id), utc_now())
    order.outbox = [OutboxMessage.of(event) for event in applied.outputs]
    order.version = 1
    token = uuid.uuid4().hex
    assert await store.save_many([encode(order, 0, token)], token) == set()
    await store.mark_sent([PendingOutbox.key(order_id, 1)])
    return order


async def add_marker(store: OrderStore, order_id: str, version: int, minutes_ago: float) -> None:
    at = utc_now() - timedelta(minutes=minutes_ago)
    marker = PendingOutbox(_id=f"{order_id}@{version}", order_id=order_id, version=version, at=at)
    await store.pending.insert_one(marker.to_mongo())


async def marker_ids(store: OrderStore) -> set[str]:
    return {raw["_id"] async for raw in store.pending.find({})}


async def test_a_marker_whose_save_has_not_landed_is_kept_until_abandoned_and_never_sent(
    store: OrderStore,
) -> None:
    order = await saved_order(store, "ord-flight")
    # Another worker's save of version 2 has its marker in but its write not landed yet.
    tried = utc_now() - timedelta(minutes=1)
    in_flight = PendingOutbox(_id="ord-flight@2", order_id="ord-flight", version=2, at=tried)
    await store.pending.insert_one(in_flight.to_mongo())
    relay_now = utc_now() - timedelta(seconds=30)
    assert await store.unsent(saved_before=relay_now) == []
    assert await marker_ids(store) == {"ord-flight@2"}
    # Long after that save's last try, its write is taken as failed.
    later = relay_now + ABANDONED_AFTER + timedelta(minutes=2)
    assert await store.unsent(saved_before=later) == []
    assert await marker_ids(store) == set()
    assert (await store.load("ord-flight")).version == order.version  # type: ignore[union-attr]


async def test_a_marker_a_newer_save_carried_forward_is_dropped_at_once(store: OrderStore) -> None:
    await saved_order(store, "ord-carried")
    old = PendingOutbox(
        _id="ord-carried@0",
        order_id="ord-carried",
        version=0,
        at=utc_now() - timedelta(minutes=1),
    )
    await store.pending.insert_one(old.to_mongo())
    assert await store.unsent(saved_before=utc_now()) == []
    assert await marker_ids(store) == set()


async def test_each_try_of_a_save_dates_its_marker_again(store: OrderStore) -> None:
    order = OrderDocument(_id="ord-retry")
    order.outbox = [
        OutboxMessage.of(event) for event in apply(order, placed("ord-retry"), utc_now()).outputs
    ]
    order.version = 1
    token = uuid.uuid4().hex
    change = encode(order, 0, token)
    assert await store.save_many([change], token) == set()
    first = (await store.pending.find_one({"_id": "ord-retry@1"}))["at"]  # type: ignore[index]
    # The same save tried again (its first answer was lost in an outage): not a lost race. The
    # store keeps milliseconds: the clock moves past the first date before the second try.
    await asyncio.sleep(0.01)
    assert await store.save_many([change], token) == set()
    second = (await store.pending.find_one({"_id": "ord-retry@1"}))["at"]  # type: ignore[index]
    assert second > first


async def test_a_relay_pass_reads_the_oldest_markers_first_and_postponed_ones_last(
    settings: Settings, store: OrderStore
) -> None:
    for order_id, minutes in (("ord-old", 3), ("ord-new", 2)):
        await saved_order(store, order_id)
        await add_marker(store, order_id, 1, minutes_ago=minutes)
    due = utc_now() + timedelta(seconds=1)
    assert [o.id for o in await store.unsent(saved_before=due, limit=1)] == ["ord-old"]
    await store.postpone(["ord-old@1"])
    # Another worker's relay, from the oldest marker on: postponed, ord-old is now last.
    other = OrderStore(store.client, settings.database)
    assert [o.id for o in await other.unsent(saved_before=due, limit=1)] == ["ord-new"]


async def test_markers_of_saves_in_flight_never_hold_up_a_leftover_behind_them(
    store: OrderStore,
) -> None:
    await saved_order(store, "ord-left")
    await add_marker(store, "ord-left", 1, minutes_ago=1)
    # Older saves whose writes have not landed (kept until abandoned): a full pass of them.
    for index in range(3):
        await add_marker(store, f"ord-flight-{index}", 1, minutes_ago=3)
    due = utc_now()
    passes = [[o.id for o in await store.unsent(saved_before=due, limit=2)] for _ in range(3)]
    assert passes == [[], ["ord-left"], []]
    assert {f"ord-flight-{index}@1" for index in range(3)} <= await marker_ids(store)


async def test_an_outbox_of_an_unreadable_order_or_marker_waits_and_the_others_are_relayed(
    store: OrderStore,
) -> None:
    await saved_order(store, "ord-good")
    await add_marker(store, "ord-good", 1, minutes_ago=1)
    # Written by a newer version (a status this one does not know), and a marker without
    # its order id: neither may stop the relay for everyone.
    await store.orders.insert_one({"_id": "ord-newer", "version": 1, "status": "on_hold"})
    # Left by a crash long ago (past ABANDONED_AFTER): unread, it is still not stale.
    await add_marker(store, "ord-newer", 1, minutes_ago=20)
    await store.pending.insert_one({"_id": "junk", "at": utc_now() - timedelta(minutes=2)})
    due = utc_now()
    assert [o.id for o in await store.unsent(saved_before=due)] == ["ord-good"]
    # Both wait at the back of the queue, dated now.
    waiting = {raw["_id"]: raw["at"] async for raw in store.pending.find({})}
    assert {"ord-newer@1", "junk"} <= waiting.keys()
    assert all(waiting[key] >= due - timedelta(seconds=1) for key in ("ord-newer@1", "junk"))
