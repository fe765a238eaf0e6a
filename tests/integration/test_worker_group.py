"""The worker's membership of its consumer group, on the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from cryptography.fernet import Fernet
from faststream.kafka.subscriber.usecase import BatchSubscriber

from config import Settings
from consumers.app import Fault, build_app
from consumers.sealing import Sealer
from tests.conftest import Infra, Names
from tests.integration.test_worker_fetch import fetching

pytestmark = pytest.mark.integration


def settings_of(infra: Infra, names: Names) -> Settings:
    return Settings(
        infra.kafka_bootstrap,
        infra.mongodb_uri,
        names.database,
        names.prefix,
        group_id=names.group_id,
    )


@asynccontextmanager
async def worker(settings: Settings, fault: Fault) -> AsyncIterator[AIOKafkaConsumer]:
    """A worker app running in this loop, as its consumer once it has partitions; on leaving,
    the app is stopped unless it stopped itself."""
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


async def test_a_worker_joins_its_group_in_one_round_so_members_cannot_keep_rebalancing_each_other(
    infra: Infra, names: Names
) -> None:
    # Each extra JoinGroup with other strategies starts a new generation; two workers doing so
    # took turns cancelling each other's rebalance for minutes and read nothing.
    async with worker(settings_of(infra, names), Fault()) as consumer:
        # The first member of a new group: generation 1 if it joined once.
        assert consumer._coordinator.generation == 1


async def test_a_workers_kafka_requests_wait_no_longer_than_its_session_and_a_margin(
    infra: Infra, names: Names
) -> None:
    # aiokafka checks the session only once a heartbeat is answered: with its 40 s default, a
    # hung coordinator would leave the worker on partitions the group gave to another.
    settings = settings_of(infra, names)
    async with worker(settings, Fault()) as consumer:
        timeout_ms = consumer._client._request_timeout_ms
    # A JoinGroup's longest wait (the session timeout here) still fits.
    assert settings.session_timeout_ms < timeout_ms <= settings.session_timeout_ms + 6_000


async def test_a_worker_whose_heartbeat_task_ended_stops_itself_saying_why(
    infra: Infra, names: Names
) -> None:
    fault = Fault()
    async with worker(settings_of(infra, names), fault) as consumer:
        # What ends aiokafka's heartbeat task: an error code it does not expect.
        async def unexpected() -> bool:
            raise KafkaError("Unexpected exception in heartbeat task: UnknownServerError")

        consumer._coordinator._do_heartbeat = unexpected
        # Every poll would fail for ever and the group would drop the member; it stops instead.
        for _ in range(300):
            if fault.reason is not None:
                break
            await asyncio.sleep(0.1)
    assert fault.reason == "the Kafka consumer's heartbeat task ended (KafkaError)"
