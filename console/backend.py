"""What the console talks to: the store (read only), the broker (the typed publisher) and the
dead-letter topics (read and replayed with the CLI's own functions)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import typer
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from cli.common import UNACKNOWLEDGED
from cli.messages import (
    _header,
    _letters,
    _original_topic,
    _replays,
    _start_consumer,
    read_replayable,
    replay_letters,
    value_omitted,
)
from config import Settings
from console.queries import OrderReader, ReadOnlyOrders
from consumers.topics import ensure_topics
from producers.publisher import FulfillmentPublisher, SendFailed
from schemas.events import WireModel
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, DeadLetterHeader, EventType, Topic
from store.orders import connect

SOURCE = "urn:fulfillment-console"
# A click waits this long for the broker's answer before the page says it is unavailable.
KAFKA_TIMEOUT_MS = 8000
PUBLISH_TIMEOUT_S = 15.0
# Closing a failed publisher, in the background, waits this long for its pending sends.
DISCARD_TIMEOUT_S = 5.0
# A dead-letter page gives up after this long, and says so, rather than hang. Reading takes
# well under a second per topic on a quiet broker; a crowded machine can stretch it a lot.
READ_TIMEOUT_S = 60.0


class Unavailable(Exception):
    """Kafka or the store did not answer; the message is one line for the operator.

    `maybe_sent`: the event was handed to Kafka before the answer failed to come, so it may
    still arrive."""

    def __init__(self, message: str, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class Letter:
    """One dead letter as the console lists it: never its value, which may hold secrets."""

    partition: int
    offset: int
    key: str
    reason: str
    error: str
    original: str
    replays: int
    value_size: int | None
    value_omitted: bool


@dataclass(frozen=True)
class TopicLetters:
    """The dead letters of one input topic, counted by reason."""

    topic: str
    total: int
    reasons: dict[str, int]


@dataclass(frozen=True)
class ReplayPreview:
    """What a replay would send back, and what it would leave out and why."""

    letters: list[Letter]
    failed_again: int
    value_omitted: int
    # The end offset of each partition read up to: the replay confirmed goes no further.
    ends: dict[int, int] = field(default_factory=dict)


class Backend(Protocol):
    """Everything the console reads and sends; tests give it a fake."""

    @property
    def orders(self) -> OrderReader: ...

    async def publish(
        self, event_type: EventType, order_id: str, data: WireModel, event_id: str
    ) -> None: ...

    async def dead_letter_counts(self) -> list[TopicLetters]: ...

    async def dead_letters(self, topic: Topic) -> list[Letter]: ...

    async def replay_preview(self, topic: Topic, again: bool) -> ReplayPreview: ...

    async def replay(self, topic: Topic, again: bool, until: Mapping[int, int]) -> str: ...


def as_letter(record: Any) -> Letter:
    """A dead-letter record as shown: headers and position, never the value."""
    return Letter(
        partition=record.partition,
        offset=record.offset,
        key=(record.key or b"").decode(errors="replace"),
        reason=_header(record, DeadLetterHeader.REASON),
        error=_header(record, DeadLetterHeader.ERROR),
        original=(
            f"{_original_topic(record)}[{_header(record, DeadLetterHeader.ORIGINAL_PARTITION)}]"
            f"@{_header(record, DeadLetterHeader.ORIGINAL_OFFSET)}"
        ),
        replays=_replays(record),
        value_size=len(record.value) if record.value is not None else None,
        value_omitted=value_omitted(record),
    )


class LiveBackend:
    """The real store and broker, from the same settings as the worker."""

    def __init__(self, settings: Settings) -> None:
        # A person waits on each Kafka request: 8 s, not aiokafka's 40 (a hung broker held the
        # dead-letter page 40 s). Reading a busy broker's letters may take longer, in requests
        # of that length, up to READ_TIMEOUT_S.
        self.settings = replace(settings, kafka_request_timeout_ms=KAFKA_TIMEOUT_MS)
        self.client = connect(settings.mongodb_uri)
        self.orders = ReadOnlyOrders(self.client[settings.database]["orders"])
        self._publisher: FulfillmentPublisher | None = None
        self._closing: set[asyncio.Task[None]] = set()  # failed publishers being closed
        self._starting = asyncio.Lock()
        self._replaying = asyncio.Lock()

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.__aexit__(None, None, None)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self.client.close()

    async def _started(self) -> FulfillmentPublisher:
        """The publisher, started on first use: the console serves pages while Kafka is away."""
        async with self._starting:
            if self._publisher is None:
                # Create the contract's topics first, as the worker does: a topic the broker
                # auto-created would get the wrong number of partitions.
                try:
                    await ensure_topics(self.settings)
                except RuntimeError as refused:  # the broker's reason, in one line
                    raise Unavailable(str(refused)) from None
                publisher = FulfillmentPublisher(self.settings, source=SOURCE)
                try:
                    await publisher.__aenter__()
                except BaseException:
                    await publisher.__aexit__(None, None, None)
                    raise
                self._publisher = publisher
            return self._publisher

    async def publish(
        self, event_type: EventType, order_id: str, data: WireModel, event_id: str
    ) -> None:
        publisher: FulfillmentPublisher | None = None
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                publisher = await self._started()
                try:
                    await publisher.publish(event_type, order_id, data, event_id=event_id)
                except SendFailed as failed:
                    # The Kafka client's own error tells refused from unanswered, below.
                    raise failed.__cause__ or failed from None
        except TimeoutError:
            self._discard(publisher)
            # Closing the publisher still sends what it holds: the event may yet arrive.
            raise Unavailable(
                "Kafka did not acknowledge in time", maybe_sent=publisher is not None
            ) from None
        except OSError as problem:
            self._discard(publisher)
            raise Unavailable(f"cannot reach Kafka: {type(problem).__name__}") from None
        except Exception as problem:
            if type(problem).__module__.startswith("aiokafka"):
                self._discard(publisher)
                # A request that timed out may still have reached the broker.
                unanswered = isinstance(problem, UNACKNOWLEDGED)
                said = "did not answer in time" if unanswered else "refused"
                raise Unavailable(
                    f"Kafka {said}: {type(problem).__name__}", maybe_sent=unanswered
                ) from None
            raise

    def _discard(self, failed: FulfillmentPublisher | None) -> None:
        """Drop the publisher that failed, unless another action has replaced it already; the
        next action starts a new one. After a broker restart a producer can stay refused for
        good (its sender stopped, or the broker refuses its sequence numbers). It is closed in
        the background: the person's page does not wait for that."""
        if failed is None or self._publisher is not failed:
            return
        self._publisher = None
        closing = asyncio.create_task(self._close_quietly(failed))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_quietly(publisher: FulfillmentPublisher) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DISCARD_TIMEOUT_S):
                await publisher.__aexit__(None, None, None)

    def _dlq(self, topic: Topic) -> str:
        return f"{self.settings.topic(topic)}{DLQ_SUFFIX}"

    async def _read(
        self, consumer: AIOKafkaConsumer, dlq: str, existing: set[str], from_committed: bool
    ) -> list[Any]:
        """The letters of `dlq` with the CLI's reader; none when the topic does not exist."""
        if dlq not in existing:
            return []
        # A consumer's metadata covers the topics it tracks; the CLI's reader looks `dlq` up
        # there. Tracking only what is read keeps each lookup small on a broker with many
        # topics, and only existing ones: a broker may create a topic a lookup names.
        await consumer._client.add_topic(dlq)
        return await _letters(consumer, dlq, from_committed=from_committed)

    @contextlib.asynccontextmanager
    async def _consumer(self, group: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
        """A started consumer; Kafka failures become one readable `Unavailable`."""
        try:
            consumer = await _start_consumer(self.settings, group)
        except Exception as problem:
            raise Unavailable(f"cannot reach Kafka: {type(problem).__name__}") from None
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                yield consumer
        except TimeoutError:
            raise Unavailable(f"Kafka did not answer within {READ_TIMEOUT_S:.0f} s") from None
        except KafkaError as problem:
            raise Unavailable(f"Kafka failed: {type(problem).__name__}") from None
        except typer.Exit:
            # The CLI's reader exits when the broker did not describe the topic in time.
            raise Unavailable("Kafka did not describe the dead-letter topic in time") from None
        finally:
            await consumer.stop()

    async def dead_letter_counts(self) -> list[TopicLetters]:
        found = []
        async with self._consumer() as consumer:
            existing = set(await consumer.topics())  # one look at every topic, for them all
            for topic in INPUT_TOPICS:
                records = await self._read(consumer, self._dlq(topic), existing, False)
                reasons: dict[str, int] = {}
                for letter in map(as_letter, records):
                    reasons[letter.reason or "?"] = reasons.get(letter.reason or "?", 0) + 1
                found.append(TopicLetters(topic.value, len(records), reasons))
        return found

    async def dead_letters(self, topic: Topic) -> list[Letter]:
        async with self._consumer() as consumer:
            existing = set(await consumer.topics())
            records = await self._read(consumer, self._dlq(topic), existing, False)
        return [as_letter(record) for record in records]

    async def replay_preview(self, topic: Topic, again: bool) -> ReplayPreview:
        """What `dlq replay` would send now, read and chosen as it reads and chooses."""
        dlq = self._dlq(topic)
        async with self._consumer() as consumer:
            exists = dlq in await consumer.topics()
        if not exists:
            return ReplayPreview([], 0, 0)
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                reading = await read_replayable(self.settings, dlq, again)
                await reading.close()
        except TimeoutError:
            raise Unavailable(f"Kafka did not answer within {READ_TIMEOUT_S:.0f} s") from None
        except (KafkaError, OSError) as problem:
            raise Unavailable(f"Kafka failed: {type(problem).__name__}") from None
        outcome = reading.outcome
        return ReplayPreview(
            [as_letter(record) for record in reading.chosen],
            outcome.failed_again,
            outcome.value_omitted,
            reading.ends,
        )

    async def replay(self, topic: Topic, again: bool, until: Mapping[int, int]) -> str:
        """Replay with the CLI's function, no further than the preview read (`until`); one at
        a time, so two clicks cannot interleave."""
        dlq = self._dlq(topic)
        async with self._replaying:
            async with self._consumer() as consumer:
                exists = dlq in await consumer.topics()
            if not exists:
                return f"no dead letters in {dlq}"
            try:
                outcome = await replay_letters(self.settings, dlq, again, until=until)
            except (KafkaError, OSError, TimeoutError) as problem:
                raise Unavailable(f"Kafka failed: {type(problem).__name__}") from None
        return outcome.summary("replayed", dlq)
