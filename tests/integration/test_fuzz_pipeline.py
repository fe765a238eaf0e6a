"""Fuzzed records through the real pipeline: it never crashes, and every rejected one is in the DLQ."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import Settings
from consumers.outputs import KafkaOutputs
from consumers.pipeline import Pipeline
from consumers.sealing import Sealer
from consumers.topics import ensure_topics
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, Topic
from store.orders import OrderStore, connect
from tests.conftest import Infra
from tests.factories import Record

pytestmark = pytest.mark.integration
garbage = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    ).map(lambda value: json.dumps(value).encode()),
)


async def _run(settings: Settings, batch: list[tuple[Topic, bytes]]) -> tuple[int, set[bytes]]:
    outputs = KafkaOutputs(settings)
    await outputs.start()
    store = OrderStore(connect(settings.mongodb_uri), settings.database)
    try:
        records = [
            Record(settings.topic(topic), 0, i, f"fuzz-{uuid.uuid4().hex}".encode(), value)
            for i, (topic, value) in enumerate(batch)
        ]
        report = await Pipeline(
            settings, store, outputs, Sealer(Fernet.generate_key().decode())
        ).handle(records)
        return report.dead_letters, {r.key for r in records if r.key}
    finally:
        await outputs.stop()
        await store.client.close()


async def _dead_lettered(settings: Settings) -> set[bytes]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(f"{settings.topic(t)}{DLQ_SUFFIX}", p)
            for t in INPUT_TOPICS
            for p in range(settings.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        keys: set[bytes] = set()
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                keys |= {
                    r.key
                    for r in records
                    if r.key is not None and dict(r.headers).get("x-dlq-reason")
                }
        return keys
    finally:
        await consumer.stop()


def test_fuzzed_records_never_crash_the_pipeline_and_all_land_in_the_dlq_with_a_reason(
    infra: Infra,
) -> None:
    token = uuid.uuid4().hex[:8]
    config = Settings(
        infra.kafka_bootstrap,
        infra.mongodb_uri,
        f"fuzz_{token}",
        f"fuzz{token}.",
        f"fuzz-{token}",
        partitions=2,
    )
    asyncio.run(ensure_topics(config))
    sent: set[bytes] = set()

    @settings_for_fuzz
    @given(st.lists(st.tuples(st.sampled_from(INPUT_TOPICS), garbage), min_size=1, max_size=6))
    def run_batch(batch: list[tuple[Topic, bytes]]) -> None:
        dead, keys = asyncio.run(_run(config, batch))
        assert dead == len(batch)  # nothing random is a valid CloudEvent of the right type
        sent.update(keys)

    run_batch()
    assert sent and sent <= asyncio.run(_dead_lettered(config))


settings_for_fuzz = settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck)
)
