"""The stack is real: a multi-partition Kafka topic and a MongoDB-wire store with real semantics."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient, ReplaceOne
from pymongo.errors import DuplicateKeyError

from tests.conftest import Infra, Names

pytestmark = pytest.mark.integration


async def test_keys_stay_on_their_partition_of_a_multi_partition_topic(
    infra: Infra, names: Names
) -> None:
    topic = names.topic("smoke")
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(topic, key=f"ord-{i % 10}".encode(), value=f"{i}".encode())
            for i in range(200)
        ]
    finally:
        await producer.stop()
    assert len({meta.partition for meta in sent}) > 1, "keys should spread over several partitions"

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=names.group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    values_of: dict[bytes, list[int]] = defaultdict(list)
    try:
        async with asyncio.timeout(30):
            while sum(len(v) for v in values_of.values()) < 200:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        partitions_of[record.key].add(record.partition)
                        values_of[record.key].append(int(record.value))
    finally:
        await consumer.stop()

    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert all(values == sorted(values) for values in values_of.values()), "per-key order kept"


async def test_store_enforces_unique_index_and_compare_and_set(infra: Infra, names: Names) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        collection = client[names.database]["orders"]
        await collection.create_index("order_number", unique=True)
        await collection.insert_one({"_id": "ord-1", "order_number": "#1", "version": 1})
        assert await collection.find_one({"_id": "ord-1"}) == {
            "_id": "ord-1",
            "order_number": "#1",
            "version": 1,
        }

        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"_id": "ord-2", "order_number": "#1", "version": 1})

        fresh = await collection.replace_one(
            {"_id": "ord-1", "version": 1}, {"order_number": "#1", "version": 2, "note": "a"}
        )
        stale = await collection.bulk_write(
            [ReplaceOne({"_id": "ord-1", "version": 1}, {"order_number": "#1", "version": 2})]
        )
        assert fresh.modified_count == 1
        assert stale.matched_count == 0
        stored = await collection.find_one({"_id": "ord-1"})
        assert stored is not None and stored["note"] == "a"
    finally:
        await client.drop_database(names.database)
        await client.close()
