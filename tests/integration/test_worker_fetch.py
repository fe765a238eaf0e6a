"""A worker whose Kafka consumer can no longer fetch stops itself, to be started again."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.app import Fault
from tests.conftest import Infra, Names
from tests.integration.worker_app import reported, settings_of, worker

pytestmark = pytest.mark.integration


async def test_a_worker_whose_fetch_task_ended_stops_itself_saying_why(
    infra: Infra, names: Names
) -> None:
    fault = Fault()
    async with worker(settings_of(infra, names), fault) as consumer:
        # What ends aiokafka's fetch routine: an error it does not expect in a fetch.
        async def unexpected(*_: Any) -> bool:
            raise ValueError("a fetch response no reader can parse")

        consumer._fetcher._proc_fetch_request = unexpected
        # The worker stops on its own (its process then exits with FAULT_EXIT).
        await reported(fault)
    assert fault.reason == "the Kafka consumer's fetch task ended (KafkaError from ValueError)"
