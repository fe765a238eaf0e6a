"""The worker's poll for a batch and its rewind after a failed one."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, UnknownError
from cryptography.fernet import Fernet
from faststream.kafka.subscriber.usecase import BatchSubscriber

from config import Settings
from consumers.app import (
    IDLE_POLL_MS,
    STALL_SECONDS,
    Fault,
    PollHealth,
    build_app,
    rewind,
    wait_for_records,
)
from consumers.sealing import Sealer


class Consumer:
    """aiokafka's consumer as the poll uses it: `getmany` answers from a script."""

    def __init__(self, *answers: dict[TopicPartition, list[Any]]) -> None:
        self.answers = list(answers)
        self._fetcher: Fetcher | None = None
        self.polls: list[tuple[int, int | None]] = []

    async def getmany(
        self, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[Any]]:
        self.polls.append((timeout_ms, max_records))
        return self.answers.pop(0)


def subscriber_of_worker(fault: Fault | None = None) -> BatchSubscriber:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", mongodb_uri="mongodb://127.0.0.1:9")
    app = build_app(settings, sealer=Sealer(Fernet.generate_key().decode()), fault=fault)
    assert app.broker is not None
    (subscriber,) = app.broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    return subscriber


def record(topic: str, offset: int, partition: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """`asyncio.sleep` made instant: the delays asked for, in order."""
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr("asyncio.sleep", sleep)
    return delays


async def test_an_empty_poll_returns_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s after an empty poll")

    monkeypatch.setattr("anyio.sleep", no_sleep)
    subscriber = subscriber_of_worker()
    consumer = Consumer({})
    assert await subscriber.get_msg(consumer) == ()
    assert consumer.polls == [(IDLE_POLL_MS, subscriber.max_records)]


async def test_a_poll_waits_in_aiokafka_and_returns_every_partitions_records() -> None:
    subscriber = subscriber_of_worker()
    first, second = record("a", 0), record("b", 5)
    consumer = Consumer({TopicPartition("a", 0): [first], TopicPartition("b", 0): [second]})
    assert await subscriber.get_msg(consumer) == (first, second)
    # aiokafka returns as soon as any record is there; the timeout only spaces an idle worker's wakes.
    assert consumer.polls[0][0] >= 500


class Fetcher:
    """aiokafka's fetcher as the poll looks at it: its background task and fetch requests."""

    def __init__(self, task: asyncio.Future[None]) -> None:
        self._fetch_task = task
        self._pending_tasks: set[asyncio.Future[None]] = set()

    @property
    def error_future(self) -> asyncio.Future[None]:
        return self._fetch_task


async def ended_task(problem: BaseException | None) -> asyncio.Future[None]:
    async def fetch() -> None:
        if problem is not None:
            raise problem

    task = asyncio.ensure_future(fetch())
    await asyncio.gather(task, return_exceptions=True)
    return task


async def test_a_poll_after_the_fetch_task_ended_stops_the_worker_saying_why() -> None:
    # aiokafka wraps what ended its fetch routine in a KafkaError; getmany then returns nothing.
    ended = KafkaError("Unexpected error during data retrieval")
    ended.__cause__ = ValueError("a response no reader can parse")
    consumer = Consumer({}, {})
    consumer._fetcher = Fetcher(await ended_task(ended))
    fault = Fault()
    subscriber = subscriber_of_worker(fault)
    assert await subscriber.get_msg(consumer) == ()
    assert fault.reason == "the Kafka consumer's fetch task ended (KafkaError from ValueError)"
    # Settled, so that stopping the consumer does not raise the error again.
    assert consumer._fetcher is not None and consumer._fetcher.error_future.result() is None


async def test_a_fetch_task_ended_by_the_consumer_stopping_is_not_a_fault() -> None:
    # aiokafka's fetch routine catches its cancellation and returns: done, no error.
    returned = await ended_task(None)
    cancelled = asyncio.ensure_future(asyncio.sleep(60))
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    fault = Fault()
    subscriber = subscriber_of_worker(fault)
    for fetch in (returned, cancelled):
        consumer = Consumer({})
        consumer._fetcher = Fetcher(fetch)
        assert await subscriber.get_msg(consumer) == ()
    assert fault.reason is None


class Failing:
    """A consumer whose poll fails the way FastStream does not expect (not a Kafka error)."""

    async def getmany(
        self, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[Any]]:
        raise ValueError("a batch no reader can parse")


async def test_a_poll_that_fails_unexpectedly_waits_longer_each_time_before_the_next(
    slept: list[float],
) -> None:
    subscriber = subscriber_of_worker()
    for _ in range(3):
        assert await subscriber.get_msg(Failing()) == ()
    assert slept == [0.5, 1.0, 2.0]


async def test_a_kafka_error_in_a_poll_is_left_to_faststream_which_pauses_on_it() -> None:
    class Unreachable:
        async def getmany(self, timeout_ms: int, max_records: int | None) -> None:
            raise KafkaConnectionError()

    with pytest.raises(KafkaConnectionError):
        await subscriber_of_worker().get_msg(Unreachable())


class Assigned:
    """aiokafka's consumer as `rewind` uses it: its assignment, and the seeks made."""

    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, position: TopicPartition, offset: int) -> None:
        assert position in self.assigned, "aiokafka raises IllegalStateError here"
        self.seeks.append((position, offset))


def test_a_failed_batch_is_rewound_on_every_partition_still_assigned_after_a_rebalance() -> None:
    kept, taken = TopicPartition("a", 1), TopicPartition("a", 0)
    records = [
        record("a", 7, partition=0),
        record("a", 5, partition=1),
        record("a", 9, partition=1),
    ]
    consumer = Assigned(kept)
    rewind(consumer, records)
    # Partition 0 went to another worker (it reads from the last commit); 1 goes back to 5.
    assert consumer.seeks == [(kept, 5)]
    assert taken not in consumer.assigned


class FailsOnceMidway:
    """A consumer whose first poll took partition A's records, then failed on partition B's
    (a corrupt batch, say): A's position is past records nobody got."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.polls = 0
        self.a, self.b = TopicPartition("t", 0), TopicPartition("t", 1)
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.to_beginning: list[TopicPartition] = []

    async def getmany(
        self, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        if self.polls == 1:
            raise self.error
        return {self.a: [record("t", 7)]}

    def assignment(self) -> set[TopicPartition]:
        return {self.a, self.b}

    async def committed(self, partition: TopicPartition) -> int | None:
        return 7 if partition == self.a else None

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.to_beginning += partitions


@pytest.mark.parametrize(
    "error", [ValueError("corrupt batch"), KafkaConnectionError()], ids=["unexpected", "kafka"]
)
async def test_a_poll_that_failed_part_way_is_followed_by_a_rewind_to_the_committed_offsets(
    slept: list[float], error: Exception
) -> None:
    subscriber = subscriber_of_worker()
    consumer = FailsOnceMidway(error)
    with contextlib.suppress(KafkaConnectionError):
        assert await subscriber.get_msg(consumer) == ()
    assert consumer.seeks == []
    assert [r.offset for r in await subscriber.get_msg(consumer)] == [7]
    assert consumer.seeks == [(consumer.a, 7)] and consumer.to_beginning == [consumer.b]
    await subscriber.get_msg(consumer)
    assert consumer.seeks == [(consumer.a, 7)]  # once: nothing failed since


class HeartbeatEnded(FailsOnceMidway):
    """A consumer whose heartbeat task ended on an error: every poll raises it again."""

    def __init__(self, heartbeat: asyncio.Future[None]) -> None:
        super().__init__(KafkaError("Unexpected exception in heartbeat task"))
        self._coordinator = type("Coordinator", (), {"_heartbeat_task": heartbeat})()
        self.asked_committed = 0

    async def getmany(
        self, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[Any]]:
        raise self.error

    async def committed(self, partition: TopicPartition) -> int | None:
        self.asked_committed += 1
        return 0


async def test_polls_after_the_heartbeat_task_ended_stop_the_worker_and_come_no_faster_than_idle(
    slept: list[float],
) -> None:
    fault = Fault()
    subscriber = subscriber_of_worker(fault)
    consumer = HeartbeatEnded(await ended_task(KafkaError("UnknownServerError")))
    for _ in range(3):  # until the worker has stopped, FastStream polls on
        assert await subscriber.get_msg(consumer) == ()
    assert fault.reason == "the Kafka consumer's heartbeat task ended (KafkaError)"
    assert slept == [IDLE_POLL_MS / 1000] * 3
    assert consumer.asked_committed == 0  # no rewind for a worker that is stopping


class CoordinatorAway(FailsOnceMidway):
    """The same, then the group coordinator does not answer for the committed offsets (aiokafka
    waits for it without end)."""

    async def committed(self, partition: TopicPartition) -> int | None:
        await asyncio.Event().wait()
        raise AssertionError("never answered")


async def test_the_rewind_after_a_failed_poll_gives_up_in_time_and_counts_as_a_failed_poll(
    monkeypatch: pytest.MonkeyPatch, slept: list[float]
) -> None:
    monkeypatch.setattr("consumers.app.REWIND_TIMEOUT_S", 0.05)
    subscriber, polls, consumer = (
        subscriber_of_worker(),
        PollHealth(),
        CoordinatorAway(ValueError("corrupt batch")),
    )
    wait_for_records(subscriber, lambda why: None, polls)
    assert await subscriber.get_msg(consumer) == ()
    assert await asyncio.wait_for(subscriber.get_msg(consumer), 5) == ()
    assert consumer.seeks == [] and consumer.polls == 1  # not read past the unrewound position
    assert polls.failing_since is not None and polls.error == "TimeoutError"


async def test_polls_failing_for_a_minute_make_the_worker_not_ready_until_one_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fenced static member, or a group whose heartbeat is refused: every poll raises, no
    # batch is ever in hand, and the store and producer still answer.
    now = [1000.0]
    monkeypatch.setattr("consumers.app.time.monotonic", lambda: now[0])

    class Fenced:
        def __init__(self) -> None:
            self.fenced = True

        async def getmany(
            self, timeout_ms: int, max_records: int | None
        ) -> dict[TopicPartition, list[Any]]:
            if self.fenced:
                raise UnknownError("FENCED_INSTANCE_ID")
            return {}

        def assignment(self) -> set[TopicPartition]:
            return set()

    subscriber, polls, consumer = subscriber_of_worker(), PollHealth(), Fenced()
    wait_for_records(subscriber, lambda why: None, polls)
    for _ in range(3):
        with pytest.raises(UnknownError):
            await subscriber.get_msg(consumer)
        now[0] += 25
    problem = polls.problem(STALL_SECONDS)
    assert problem is not None and "UnknownError" in problem and "75s" in problem
    consumer.fenced = False
    assert await subscriber.get_msg(consumer) == ()
    assert polls.problem(STALL_SECONDS) is None
