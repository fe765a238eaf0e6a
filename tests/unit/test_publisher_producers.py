"""The embeddable publisher's Kafka producers: a new one after a failed send, one at a time."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from aiokafka.errors import KafkaTimeoutError

from config import Settings
from producers.publisher import FulfillmentPublisher


class Producer:
    """aiokafka's producer as the publisher uses it; the first one's first send fails."""

    made: ClassVar[list[Producer]] = []

    def __init__(self) -> None:
        self.started = self.stopped = 0
        self.sent: list[bytes | None] = []
        self.fail_next = not Producer.made
        self.fails_all = False
        Producer.made.append(self)

    async def start(self) -> None:
        await asyncio.sleep(0.01)  # a round trip, as a real start makes
        self.started += 1

    async def stop(self) -> None:
        await asyncio.sleep(0.01)
        self.stopped += 1

    async def send_and_wait(self, topic: str, value: bytes | None, **_: Any) -> None:
        # A value b"slow..." takes longer to be answered.
        await asyncio.sleep(0.2 if value and value.startswith(b"slow") else 0.01)
        if self.fail_next or self.fails_all:
            self.fail_next = False
            raise KafkaTimeoutError()
        self.sent.append(value)


@pytest.fixture(autouse=True)
def producers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each publisher's producers are `Producer`s, counted afresh for each test."""
    Producer.made = []
    monkeypatch.setattr(FulfillmentPublisher, "_new_producer", lambda self: Producer())


async def test_sends_after_a_failure_go_through_one_new_producer_and_the_failed_one_stops() -> None:
    async with FulfillmentPublisher(Settings()) as publisher:
        with pytest.raises(KafkaTimeoutError):
            await publisher.send_raw("t", b"k", b"lost")
        await asyncio.gather(*(publisher.send_raw("t", b"k", b"%d" % n) for n in range(3)))
    first, second = Producer.made  # one replacement for the three sends
    assert sorted(value or b"" for value in second.sent) == [b"0", b"1", b"2"]
    assert (first.started, first.stopped) == (1, 1)
    assert (second.started, second.stopped) == (1, 1)


async def test_a_send_that_fails_on_a_producer_already_replaced_keeps_the_new_one() -> None:
    async with FulfillmentPublisher(Settings()) as publisher:
        Producer.made[0].fails_all = True
        slow = asyncio.create_task(publisher.send_raw("t", b"k", b"slow-on-the-first"))
        with pytest.raises(KafkaTimeoutError):
            await publisher.send_raw("t", b"k", b"fast-on-the-first")
        await publisher.send_raw("t", b"k", b"on-the-second")
        with pytest.raises(KafkaTimeoutError):
            await slow  # fails after the second producer took over
        await publisher.send_raw("t", b"k", b"still-on-the-second")
    assert len(Producer.made) == 2
    assert Producer.made[1].sent == [b"on-the-second", b"still-on-the-second"]
