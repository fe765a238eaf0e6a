"""The embeddable publisher's Kafka producers: a new one after a failed send, one at a time."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, ClassVar

import pytest
from aiokafka.errors import KafkaTimeoutError

from config import Settings
from producers.publisher import FulfillmentPublisher, PublisherClosed, SendFailed
from schemas.events import FulfillmentTrackingUpdated

TRACKING = FulfillmentTrackingUpdated(fulfillment_id="ful-1", tracking_number="AWB-2")


class Producer:
    """aiokafka's producer as the publisher uses it; the first one's first send fails."""

    made: ClassVar[list[Producer]] = []

    def __init__(self) -> None:
        self.started = self.stopped = 0
        self.sent: list[bytes | None] = []
        self.fail_next = not Producer.made
        self.fails_all = False
        self.stop_takes = 0.01
        Producer.made.append(self)

    async def start(self) -> None:
        await asyncio.sleep(0.01)  # a round trip, as a real start makes
        self.started += 1

    async def stop(self) -> None:
        await asyncio.sleep(self.stop_takes)
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


async def test_after_a_failure_the_failed_producer_has_stopped_before_the_next_send_goes_out() -> (
    None
):
    # Stopping a real producer delivers what it still holds: those must not overtake.
    async with FulfillmentPublisher(Settings()) as publisher:
        with pytest.raises(KafkaTimeoutError):
            await publisher.send_raw("t", b"k", b"lost")
        first = Producer.made[0]
        first.stop_takes = 0.1
        await publisher.send_raw("t", b"k", b"next")
        assert first.stopped == 1  # before "next" went out on the new producer
    assert Producer.made[1].sent == [b"next"]


async def test_a_publish_the_broker_did_not_acknowledge_says_which_event_id_to_send_again() -> None:
    async with FulfillmentPublisher(Settings(), source="urn:shop") as publisher:
        with pytest.raises(SendFailed) as failed:
            await publisher.tracking_updated("ord-1", TRACKING)
        assert isinstance(failed.value.__cause__, KafkaTimeoutError)
        assert failed.value.event_id in str(failed.value)
        again = await publisher.tracking_updated("ord-1", TRACKING, event_id=failed.value.event_id)
    assert again == failed.value.event_id
    assert len(Producer.made[1].sent) == 1
    assert failed.value.event_id.encode() in (Producer.made[1].sent[0] or b"")


async def test_a_closed_publisher_refuses_to_send_and_opens_no_producer() -> None:
    async with FulfillmentPublisher(Settings()) as publisher:
        pass
    for _ in range(2):
        with pytest.raises(PublisherClosed):
            await publisher.send_raw("t", b"k", b"after")
    assert len(Producer.made) == 1


async def test_a_naive_time_or_an_empty_event_id_is_refused_before_sending() -> None:
    async with FulfillmentPublisher(Settings()) as publisher:
        with pytest.raises(ValueError, match="no time zone"):
            await publisher.tracking_updated("ord-1", TRACKING, time=datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="event_id is empty"):
            await publisher.tracking_updated("ord-1", TRACKING, event_id="")
    assert Producer.made[0].sent == []


async def test_non_ascii_text_is_sent_and_measured_as_utf8_not_escapes() -> None:
    async with FulfillmentPublisher(Settings()) as publisher:
        Producer.made[0].fail_next = False
        await publisher.tracking_updated(
            "ord-1", FulfillmentTrackingUpdated(fulfillment_id="ful-1", carrier="日本郵便")
        )
    assert "日本郵便".encode() in (Producer.made[0].sent[0] or b"")


async def test_a_publisher_closed_while_a_send_waits_to_replace_its_producer_starts_no_new_one() -> (
    None
):
    publisher = FulfillmentPublisher(Settings())
    await publisher.__aenter__()
    with pytest.raises(KafkaTimeoutError):
        await publisher.send_raw("t", b"k", b"lost")
    Producer.made[0].stop_takes = 0.2
    waiting = asyncio.create_task(publisher.send_raw("t", b"k", b"late"))
    await asyncio.sleep(0.05)  # the send waits for the failed producer to stop
    await publisher.__aexit__(None, None, None)
    with pytest.raises(PublisherClosed):
        await waiting
    assert len(Producer.made) == 1


async def test_senders_wait_for_a_failed_producer_a_bounded_time_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("producers.publisher.FAILED_PRODUCER_WAIT_S", 0.05)
    async with FulfillmentPublisher(Settings()) as publisher:
        with pytest.raises(KafkaTimeoutError):
            await publisher.send_raw("t", b"k", b"lost")
        Producer.made[0].stop_takes = 1.0  # a partition whose leader does not answer
        started = asyncio.get_running_loop().time()
        await publisher.send_raw("t", b"k", b"other order")
        assert asyncio.get_running_loop().time() - started < 0.5
    assert Producer.made[1].sent == [b"other order"]


async def test_a_send_that_waited_for_the_lock_while_the_publisher_closed_is_refused() -> None:
    publisher = FulfillmentPublisher(Settings())
    await publisher.__aenter__()
    async with publisher._replacing:  # a replacement under way
        waiting = asyncio.create_task(publisher.send_raw("t", b"k", b"queued"))
        await asyncio.sleep(0.02)
        publisher._closed = True  # as __aexit__ sets it before it waits for the lock
    with pytest.raises(PublisherClosed):
        await waiting
    await publisher.__aexit__(None, None, None)
    assert Producer.made[0].sent == []
