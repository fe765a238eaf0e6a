"""Publishing to Kafka with broker acknowledgement: output events and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownProducerId,
)
from aiokafka.partitioner import murmur2

from config import Settings
from consumers.retry import is_outage
from schemas.cloudevents import CONTENT_TYPE, CONTENT_TYPE_HEADER
from schemas.limits import MAX_RECORD_BYTES, record_bytes

CLOUDEVENTS_JSON = CONTENT_TYPE.encode()
# Seconds a replaced producer may take to stop (and then to close its connections).
CLOSE_TIMEOUT_S = 10.0
log = logging.getLogger("fulfillment.outputs")


@dataclass(frozen=True)
class Message:
    """One Kafka record to publish, exactly as it will travel."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes of key, value and headers: what counts against the broker's record limit."""
        return record_bytes(self.key, self.value, self.headers)


def event_message(topic: str, key: str, value: str) -> Message:
    """A CloudEvent (JSON text) in structured mode; the key is the order id."""
    return Message(topic, key.encode(), value.encode(), [(CONTENT_TYPE_HEADER, CLOUDEVENTS_JSON)])


def _read_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner picks (of `partitions`, sorted): by the key's
    murmur2 hash as Java clients do, at random without a key."""
    if key is None:
        return random.choice(partitions)
    return partitions[_key_hash(key) % len(partitions)]


@lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    # aiokafka hashes in pure Python; an order's outputs share its key, so the hash is kept.
    return int(murmur2(key)) & 0x7FFFFFFF


class ProducerStopped(ConnectionError):
    """The producer cannot send any more: its sender stopped for good (aiokafka fails every
    later send), or the broker refused its idempotence state. An outage; the next `send` starts
    a new producer."""


# The broker refusing the producer's id, epoch or sequence numbers. aiokafka (0.14) numbers a
# batch when it takes it off its queue; one that then expires because its partition has no
# leader (a broker restart longer than the request timeout) fails unsent and leaves a gap, and
# the broker refuses every later batch to that partition, whatever it holds
# (aio-libs/aiokafka#1017: sends fail until the process restarts). Only a new producer (a new
# id) gets past it.
_PRODUCER_STATE_ERRORS: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerIdMapping,
    InvalidProducerEpoch,
    ProducerFenced,
)
# The only refusals that are the record's own: it is too large for the broker or the client.
_TOO_LARGE: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)


def refuses_producer(problem: BaseException | None) -> bool:
    """Whether the broker refused the producer itself (its id, epoch or sequence numbers)."""
    return isinstance(problem, _PRODUCER_STATE_ERRORS)


def sender_stopped(producer: AIOKafkaProducer) -> bool:
    """Whether the producer's sender task ended: on a fatal error (a sequence number out of
    order after a broker failover, aio-libs/aiokafka#1017), after which aiokafka fails every
    send with a copy of that error, forever. aiokafka has no public flag for it."""
    task = producer._sender.sender_task
    return task is not None and task.done()


def is_too_large(problem: BaseException | None) -> bool:
    """Whether a record was refused for its size (the one refusal a smaller record can pass)."""
    return isinstance(problem, _TOO_LARGE)


class KafkaOutputs:
    """An idempotent producer whose `send` returns only once the broker has every record."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        # The batch handler and the relay send through one producer: one replaces it at a time.
        self._replacing = asyncio.Lock()
        # A producer the broker refused for its idempotence state: replaced before the next send.
        self._refused: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect; aiokafka needs a running event loop to create its producer."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=1024 * 1024,
            # Our own budget (MAX_RECORD_BYTES) is checked first; this is the client's backstop.
            max_request_size=MAX_RECORD_BYTES + 48_576,
            # The settings may shorten the request timeout; they win over our default.
            **({"request_timeout_ms": 15000} | self._settings.kafka_options()),
        )
        try:
            await producer.start()
        except BaseException:
            # Tried again after an outage: a producer that did not start holds no connections.
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def _current(self) -> AIOKafkaProducer:
        """The producer to send with: a new one for one whose sender stopped (or when a failed
        replacement left none), the old one closed as far as it can be."""
        async with self._replacing:
            old = self._producer
            if old is not None and not sender_stopped(old) and old is not self._refused:
                return old
            self._producer = None
            self._refused = None
            if old is not None:
                log.warning("the Kafka producer cannot send any more; starting a new one")
                await self._close(old)
            await self.start()
            assert self._producer is not None
            return self._producer

    @staticmethod
    async def _close(old: AIOKafkaProducer) -> None:
        """Close a producer that cannot send, as far as it can be. Its sender ends first
        (requests in flight get their answers), then the batches it never sent fail: a caller
        waiting on them retries through the new producer, stopping does not wait for batches
        that would never go out, and none goes out later beside its new copy."""
        sender = old._sender.sender_task
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.wait({sender}, timeout=CLOSE_TIMEOUT_S)
        old._message_accumulator.fail_all(ProducerStopped("replaced by a new producer"))
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await old.stop()
        except Exception:
            # Stopping hung on a request to an absent broker: close its connections.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await old.client.close()

    def _raise_outage(self, producer: AIOKafkaProducer, problem: BaseException) -> None:
        """Raise `problem` if it is an outage, or `ProducerStopped` if the sender stopped or the
        broker refused the producer's state (no record is then at fault); return when it is a
        record's own refusal."""
        if sender_stopped(producer):
            stopped = f"the producer's sender stopped ({type(problem).__name__})"
            raise ProducerStopped(stopped) from problem
        if refuses_producer(problem):
            self._refused = producer
            refused = f"the broker refused the producer's state ({type(problem).__name__})"
            raise ProducerStopped(refused) from problem
        if not isinstance(problem, Exception) or is_outage(problem):
            raise problem

    async def ping(self) -> None:
        """Raise unless the broker answers a metadata request."""
        producer = self._producer
        if producer is None:
            raise ConnectionError("no Kafka producer (being started)")
        if not await asyncio.wait_for(producer.client.fetch_all_metadata(), 3):
            raise ConnectionError("no metadata from Kafka")

    async def send(self, messages: Sequence[Message]) -> list[BaseException | None]:
        """Send all and await the broker: outages raise; a record's own refusal is in its slot.

        Records go out in batches per partition, which costs a third of the CPU of one `send`
        each; a batch the broker refuses for its content is sent again record by record, so
        only the record at fault is refused.
        """
        if not messages:
            return []
        # One producer for the whole send, even if another task replaces it meanwhile.
        producer = await self._current()
        results: list[BaseException | None] = [None] * len(messages)
        pending: list[tuple[list[int], asyncio.Future[Any]]] = []
        try:
            for (topic, partition), indexes in (
                await self._by_partition(producer, messages)
            ).items():
                for batch, members in self._batches(producer, messages, indexes):
                    if batch is None:
                        refused = await self._send_each(producer, [messages[i] for i in members])
                        results[members[0]] = refused[0]
                        continue
                    try:
                        future = await producer.send_batch(batch, topic, partition=partition)
                    except KafkaError as failure:  # never a record's fault: the batch is made
                        self._raise_outage(producer, failure)
                        raise
                    pending.append((members, future))
        except BaseException:
            # Everything is sent again; the batches already handed over are only read, so
            # asyncio does not log their failures as never retrieved.
            for _, future in pending:
                future.add_done_callback(_read_outcome)
            raise
        outcomes = await asyncio.gather(*(future for _, future in pending), return_exceptions=True)
        for (members, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._raise_outage(producer, outcome)
                producer = await self._after_refusal(producer)
                refused = await self._send_each(producer, [messages[i] for i in members])
                for index, problem in zip(members, refused, strict=True):
                    results[index] = problem
        return results

    @staticmethod
    async def _by_partition(
        producer: AIOKafkaProducer, messages: Sequence[Message]
    ) -> dict[tuple[str, int], list[int]]:
        """Message positions by (topic, partition), chosen by key as Kafka's default partitioner does."""
        partitions: dict[str, list[int]] = {}
        groups: dict[tuple[str, int], list[int]] = {}
        for index, message in enumerate(messages):
            if message.topic not in partitions:
                partitions[message.topic] = sorted(await producer.partitions_for(message.topic))
            every = partitions[message.topic]
            partition = partition_for(message.key, every)
            groups.setdefault((message.topic, partition), []).append(index)
        return groups

    def _batches(
        self, producer: AIOKafkaProducer, messages: Sequence[Message], indexes: list[int]
    ) -> Iterator[tuple[Any | None, list[int]]]:
        """The messages at `indexes`, in order, in as few producer batches as they fit."""
        batch, members = producer.create_batch(), list[int]()
        for index in indexes:
            message = messages[index]
            if self._append(batch, message):
                members.append(index)
                continue
            if members:  # full: this one starts the next batch
                yield batch, members
                batch, members = producer.create_batch(), []
                if self._append(batch, message):
                    members.append(index)
                    continue
            yield None, [index]  # larger than any batch: sent alone, refused in Kafka's words
        if members:
            yield batch, members

    @staticmethod
    def _append(batch: Any, message: Message) -> bool:
        added = batch.append(
            key=message.key, value=message.value, timestamp=None, headers=message.headers
        )
        return added is not None

    async def _send_each(
        self, producer: AIOKafkaProducer, messages: Sequence[Message]
    ) -> list[BaseException | None]:
        """One `send` per record, to tell which record of a refused batch is at fault."""
        results: list[BaseException | None] = []
        for m in messages:
            try:
                await (await self._send_one(producer, m))
                results.append(None)
            except KafkaError as problem:
                self._raise_outage(producer, problem)
                results.append(problem)
                producer = await self._after_refusal(producer)
        return results

    async def _after_refusal(self, producer: AIOKafkaProducer) -> AIOKafkaProducer:
        """The producer to go on with once the broker refused a batch of `producer`'s: a new one.

        aiokafka does not take back the sequence numbers of a refused batch, so the broker
        would refuse that producer's next batch to the partition as out of order, for ever.
        """
        self._refused = producer
        return await self._current()

    async def _send_one(self, producer: AIOKafkaProducer, m: Message) -> asyncio.Future[Any]:
        if m.key is not None or m.value is not None:
            sent: asyncio.Future[Any] = await producer.send(
                m.topic, m.value, key=m.key, headers=m.headers
            )
            return sent
        # A dead letter that lost key and value (only its headers say what happened): aiokafka's
        # `send` refuses such a record, a batch of one takes it.
        batch = producer.create_batch()
        self._append(batch, m)
        partition = partition_for(None, sorted(await producer.partitions_for(m.topic)))
        future: asyncio.Future[Any] = await producer.send_batch(batch, m.topic, partition=partition)
        return future
