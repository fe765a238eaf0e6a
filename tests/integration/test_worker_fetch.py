"""A worker whose Kafka consumer can no longer fetch stops itself, to be started again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from faststream.kafka.subscriber.usecase import BatchSubscriber

from config import Settings
from consumers.app import Fault, build_app
from consumers.sealing import Sealer
from tests.conftest import Infra, Names

pytestmark = pytest.mark.integration


async def fetching(subscriber: BatchSubscriber) -> AIOKafkaConsumer:
    """The subscriber's consumer, once it has partitions to fetch from."""
    while subscriber.consumer is None or not subscriber.consumer.assignment():
        await asyncio.sleep(0.1)
    consumer: AIOKafkaConsumer = subscriber.consumer
    return consumer


async def test_a_worker_whose_fetch_task_ended_stops_itself_saying_why(
    infra: Infra, names: Names
) -> None:
    settings = Settings(
        infra.kafka_bootstrap,
        infra.mongodb_uri,
        names.database,
        names.prefix,
        group_id=names.group_id,
    )
    fault = Fault()
    app = build_app(settings, Sealer(Fernet.generate_key().decode()), None, fault)
    assert app.broker is not None
    (subscriber,) = app.broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    running = asyncio.create_task(app.run())
    try:
        consumer = await asyncio.wait_for(fetching(subscriber), 60)

        # What ends aiokafka's fetch routine: an error it does not expect in a fetch.
        async def unexpected(*_: Any) -> bool:
            raise ValueError("a fetch response no reader can parse")

        consumer._fetcher._proc_fetch_request = unexpected
        # The worker stops on its own (its process then exits with FAULT_EXIT).
        await asyncio.wait_for(running, 30)
    finally:
        if not running.done():
            app.exit()
            await running
    assert fault.reason == "the Kafka consumer's fetch task ended (KafkaError from ValueError)"
