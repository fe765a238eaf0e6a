"""The worker's membership of its consumer group, on the real broker."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet
from faststream.kafka.subscriber.usecase import BatchSubscriber

from config import Settings
from consumers.app import build_app
from consumers.sealing import Sealer
from tests.conftest import Infra, Names
from tests.integration.test_worker_fetch import fetching

pytestmark = pytest.mark.integration


async def test_a_worker_joins_its_group_in_one_round_so_members_cannot_keep_rebalancing_each_other(
    infra: Infra, names: Names
) -> None:
    # Each extra JoinGroup with other strategies starts a new generation; two workers doing so
    # took turns cancelling each other's rebalance for minutes and read nothing.
    settings = Settings(infra.kafka_bootstrap, infra.mongodb_uri, names.database, names.prefix)
    app = build_app(settings, Sealer(Fernet.generate_key().decode()))
    assert app.broker is not None
    (subscriber,) = app.broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    running = asyncio.create_task(app.run())
    try:
        consumer = await asyncio.wait_for(fetching(subscriber), 60)
        # The first member of a new group: generation 1 if it joined once.
        assert consumer._coordinator.generation == 1
    finally:
        app.exit()
        await running
