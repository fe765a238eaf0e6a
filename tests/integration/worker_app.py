"""A worker app run in the test's own event loop against the real stack, for tests that reach
into its Kafka consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from faststream.kafka.subscriber.usecase import BatchSubscriber

from config import Settings
from consumers.app import Fault, build_app
from consumers.sealing import Sealer
from tests.conftest import Infra, Names


def settings_of(infra: Infra, names: Names) -> Settings:
    """The test's own topics, database and consumer group."""
    return Settings(
        infra.kafka_bootstrap,
        infra.mongodb_uri,
        names.database,
        names.prefix,
        group_id=names.group_id,
    )


async def fetching(subscriber: BatchSubscriber) -> AIOKafkaConsumer:
    """The subscriber's consumer, once it has partitions to fetch from."""
    while subscriber.consumer is None or not subscriber.consumer.assignment():
        await asyncio.sleep(0.1)
    consumer: AIOKafkaConsumer = subscriber.consumer
    return consumer


@asynccontextmanager
async def worker(settings: Settings, fault: Fault) -> AsyncIterator[AIOKafkaConsumer]:
    """A worker app running in this loop, as its consumer once it has partitions; on leaving,
    an app that stopped itself must have stopped within 30 s, and any other is stopped."""
    app = build_app(settings, Sealer(Fernet.generate_key().decode()), None, fault)
    assert app.broker is not None
    (subscriber,) = app.broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    running = asyncio.create_task(app.run())
    try:
        yield await asyncio.wait_for(fetching(subscriber), 60)
        if fault.reason is not None or running.done():
            await asyncio.wait_for(running, 30)
    finally:
        if not running.done():
            app.exit()
            await running


async def reported(fault: Fault, timeout: float = 30.0) -> None:
    """Wait until the worker says why it stops itself; TimeoutError if not within `timeout`."""
    async with asyncio.timeout(timeout):
        while fault.reason is None:
            await asyncio.sleep(0.1)
