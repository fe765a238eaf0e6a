"""The worker's membership of its consumer group, on the real broker."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaError

from consumers.app import Fault
from tests.conftest import Infra, Names
from tests.integration.worker_app import reported, settings_of, worker

pytestmark = pytest.mark.integration


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
        await reported(fault)
    assert fault.reason == "the Kafka consumer's heartbeat task ended (KafkaError)"
