"""Drives a real worker process: publishes inputs, reads outputs, dead letters and documents."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.partitioner import murmur2
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from cryptography.fernet import Fernet

from config import Settings
from consumers.processes import spawn_worker
from consumers.topics import ensure_topics
from schemas.document import OrderDocument
from schemas.names import DLQ_SUFFIX, INPUT_TOPICS, OUTPUT_TOPICS, OrderStatus, Topic
from store.orders import OrderStore, connect
from tests.conftest import Infra, Names
from tests.factories import fulfillable_order

Record = dict[str, Any]
Headers = list[tuple[str, bytes | None]]
Test = TypeVar("Test", bound=Callable[..., Awaitable[None]])


def bounded(seconds: float = 60.0) -> Callable[[Test], Test]:
    """Fail an async test after `seconds` instead of letting a stalled pipeline hang it."""

    def wrap(test: Test) -> Test:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            async with asyncio.timeout(seconds):
                await test(*args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap


def partition_for(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (Kafka's murmur2) gives a key."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Raw:
    """One record to produce exactly as given: key, value and headers (values may be None)."""

    topic: Topic
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None

    @classmethod
    def event(
        cls,
        topic: Topic,
        event: Record,
        headers: Headers | None = None,
        key: bytes | None = None,
    ) -> Raw:
        value = json.dumps(event, ensure_ascii=False).encode()
        return cls(topic, key if key is not None else event["subject"].encode(), value, headers)


def fulfillable_raw(order_id: str) -> list[Raw]:
    """A small paid order with its fulfillment request, as records to produce."""
    return [Raw.event(topic, event) for topic, event in fulfillable_order(order_id)]


@dataclass(frozen=True)
class Burst:
    """Valid orders sent around odd records on one partition, and a canary sent after them."""

    partition: int
    neighbours: list[str]
    canary: str

    @property
    def orders(self) -> list[str]:
        return [*self.neighbours, self.canary]


class Harness:
    """One isolated pipeline: its own topics, database, consumer group and worker processes."""

    def __init__(self, infra: Infra, names: Names, log_dir: Path) -> None:
        self.settings = Settings(
            kafka_bootstrap=infra.kafka_bootstrap,
            mongodb_uri=infra.mongodb_uri,
            database=names.database,
            topic_prefix=names.prefix,
            group_id=names.group_id,
            partitions=3,
            batch_size=200,
        )
        self.secret_key = Fernet.generate_key().decode()
        self.log_dir = log_dir
        self.workers: list[subprocess.Popen[bytes]] = []
        self.store = OrderStore(connect(infra.mongodb_uri), names.database)
        self.producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
        self._seen: dict[str, list[Record]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # Workers the test stopped or killed itself: their exit is expected.
        self._stopped: set[int] = set()
        self._bursts = 0

    async def start(self, workers: int = 1, **env: str) -> None:
        await ensure_topics(self.settings)
        await self.producer.start()
        for _ in range(workers):
            self.start_worker(**env)

    def worker_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap,
            "MONGODB_URI": self.settings.mongodb_uri,
            "MONGODB_DATABASE": self.settings.database,
            "FULFILLMENT_TOPIC_PREFIX": self.settings.topic_prefix,
            "FULFILLMENT_GROUP_ID": self.settings.group_id,
            "FULFILLMENT_PARTITIONS": str(self.settings.partitions),
            "FULFILLMENT_BATCH_SIZE": str(self.settings.batch_size),
            "FULFILLMENT_SECRET_KEY": self.secret_key,
            "FULFILLMENT_LOG_LEVEL": "INFO",
            "FULFILLMENT_METRICS_PORT": "off",
        }

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"worker-{len(self.workers)}.log"
        worker = spawn_worker(self.worker_env() | env, log)
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        self._stopped.add(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    async def stop_worker(self, worker: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
        """SIGTERM, as an operator or a deployment stops a worker, and wait for it to exit."""
        self._stopped.add(worker.pid)
        worker.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(worker.wait), timeout)
        except TimeoutError:
            worker.kill()
            raise AssertionError(
                f"worker did not stop within {timeout:.0f}s after SIGTERM"
            ) from None

    async def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                await asyncio.wait_for(asyncio.to_thread(worker.wait), 30)
            except TimeoutError:
                worker.kill()
        await self.producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        await self.store.client.drop_database(self.settings.database)
        await self.store.client.close()

    def check_workers(self) -> None:
        for worker in self.workers:
            if worker.pid in self._stopped:
                continue
            # Running, unless the test stopped or killed it: any other end (an OOM kill, a
            # crash) fails the test.
            code = worker.poll()
            assert code is None, f"worker exited with {code}:\n{self.logs()[-3000:]}"

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of each worker's log, to say why outputs stopped coming."""
        tails = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append("\n".join([f"{path.name}:", *tail]))
        return "\n".join(tails)

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob("worker-*.log"))
        )

    async def send(self, topic: Topic, event: Record, key: str | None = None) -> None:
        value = json.dumps(event).encode()
        await self.send_raw(topic, (key if key is not None else event["subject"]).encode(), value)

    async def send_raw(
        self,
        topic: Topic,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        await self.producer.send_and_wait(
            self.settings.topic(topic), value, key=key, headers=headers, partition=partition
        )

    async def send_batch(self, topic: Topic, partition: int, batch: bytes) -> None:
        """A record batch exactly as given (built by `batch_with_header_name`, say), in one
        produce request: what a client other than aiokafka may send."""
        name = self.settings.topic(topic)
        client = AIOKafkaClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await client.bootstrap()
        try:
            await client._wait_on_metadata(name)
            leader = client.cluster.leader_for_partition(TopicPartition(name, partition))
            request = ProduceRequest(
                required_acks=-1,
                timeout=10_000,
                topics=[(name, [(partition, batch)])],
                transactional_id=None,
            )
            response = await client.send(leader, request)
            [(_, [(_, error_code, *_)])] = response.topics
            assert error_code == 0, f"the broker refused the batch: error {error_code}"
        finally:
            await client.close()

    @contextlib.asynccontextmanager
    async def extra_producer(self, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
        """Another producer (compression, larger requests); creating it fails if a codec is missing."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", **options
        )
        await producer.start()
        try:
            yield producer
        finally:
            await producer.stop()

    def partition_of(self, key: bytes) -> int:
        return partition_for(key, self.settings.partitions)

    def order_ids_on(self, partition: int, prefix: str, count: int) -> list[str]:
        """`count` fresh order ids whose keys the default partitioner puts on `partition`."""
        found: list[str] = []
        candidate = 0
        while len(found) < count:
            order_id = f"{prefix}-{candidate}"
            if self.partition_of(order_id.encode()) == partition:
                found.append(order_id)
            candidate += 1
        return found

    async def burst(
        self,
        odd: Sequence[Raw],
        partition: int | None = None,
        via: AIOKafkaProducer | None = None,
        neighbours_via: AIOKafkaProducer | None = None,
        before: int = 2,
        after: int = 2,
        odd_batches: Sequence[tuple[Topic, bytes]] = (),
    ) -> Burst:
        """Send valid orders, the odd records, more valid orders in one burst on one partition
        (the odd records' own, by default that of the first one's key), then, once the broker
        has all of them, a canary order on the same partition: what `completes` checks.

        The canary's events (placed, captured, requested) follow the odd records in each of
        those three topics' partition; an odd record on another topic may still be in flight
        when the canary completes, so a test of one waits for its effect."""
        if partition is None:
            # Without odd records (only odd batches), the partition must be given.
            first = next(record.key for record in odd if record.key is not None)
            partition = self.partition_of(first)
        self._bursts += 1
        ids = self.order_ids_on(partition, f"ord-b{self._bursts}", before + after + 1)
        burst = Burst(partition, ids[:-1], ids[-1])
        neighbours = neighbours_via or self.producer
        pending: list[asyncio.Future[Any]] = []

        async def put(producer: AIOKafkaProducer, record: Raw) -> None:
            pending.append(
                await producer.send(
                    self.settings.topic(record.topic),
                    record.value,
                    key=record.key,
                    headers=record.headers,
                    partition=partition,
                )
            )

        for order_id in ids[:before]:
            for record in fulfillable_raw(order_id):
                await put(neighbours, record)
        for record in odd:
            await put(via or self.producer, record)
        if odd_batches:
            # Record batches made by hand go in their own requests, after what came before.
            await asyncio.gather(*pending)
            for topic, batch in odd_batches:
                await self.send_batch(topic, partition, batch)
        for order_id in ids[before:-1]:
            for record in fulfillable_raw(order_id):
                await put(neighbours, record)
        await asyncio.gather(*pending)
        for record in fulfillable_raw(burst.canary):
            await self.send_raw(
                record.topic, record.key, record.value, record.headers, partition=partition
            )
        return burst

    async def completes(self, order_ids: Sequence[str], timeout: float = 60.0) -> None:
        """Each order's `fulfillment.completed` is seen and the stored order is fulfilled."""
        wanted = set(order_ids)

        def done() -> bool:
            return wanted <= self.completed_subjects()

        await self.until(
            done,
            timeout,
            what=lambda: f"fulfillment.completed of {sorted(wanted - self.completed_subjects())}",
        )
        for order_id in order_ids:
            await self.settled(order_id, lambda o: o.status is OrderStatus.FULFILLED, timeout)

    def completed_subjects(self) -> set[str]:
        return {str(c.get("subject")) for c in self.seen(Topic.FULFILLMENTS_COMPLETED.value)}

    async def dead_letter(self, topic: Topic, key: bytes | None, timeout: float = 60.0) -> Record:
        """The dead letter of the record with this key on `topic`."""
        dlq = topic.dlq

        def found() -> list[Record]:
            return [letter for letter in self.seen(dlq) if letter["key"] == key]

        await self.until(
            lambda: bool(found()), timeout, what=f"a dead letter in {dlq} keyed {key!r}"
        )
        return found()[0]

    async def _read(self) -> None:
        if self._consumer is None:
            topics = [self.settings.topic(t) for t in OUTPUT_TOPICS]
            topics += [f"{self.settings.topic(t)}{DLQ_SUFFIX}" for t in INPUT_TOPICS]
            self._consumer = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=self.settings.kafka_bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await self._consumer.start()
        batches = await self._consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                name = record.topic.removeprefix(self.settings.topic_prefix)
                entry: Record = {
                    "key": record.key,
                    "headers": dict(record.headers),
                    # As received, in order, duplicates and None values included.
                    "header_list": list(record.headers),
                    "raw": record.value,
                    "partition": record.partition,
                    "offset": record.offset,
                }
                # Dead letters hold whatever was sent: only a JSON object is merged in.
                with contextlib.suppress(ValueError, TypeError, RecursionError):
                    parsed = json.loads(record.value)
                    if isinstance(parsed, dict):
                        entry |= parsed
                self._seen.setdefault(name, []).append(entry)

    def seen(self, topic: str) -> list[Record]:
        return self._seen.get(topic, [])

    async def until(
        self,
        condition: Callable[[], bool],
        timeout: float = 30.0,
        what: str | Callable[[], str] = "condition",
    ) -> None:
        """Read outputs until `condition` holds; on timeout, say what was awaited."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self.check_workers()
                    await self._read()
        except (TimeoutError, asyncio.CancelledError) as stopped:
            # Also when an enclosing timeout (a bounded test) cancels the wait.
            awaited = what() if callable(what) else what
            stopped.add_note(f"stopped waiting for {awaited}")
            stopped.add_note(f"the workers' last log lines:\n{self.log_tail()}")
            raise
        await self._read()

    async def outputs_of(self, topic: Topic, count: int, timeout: float = 30.0) -> list[Record]:
        await self.until(lambda: len(self.seen(topic.value)) >= count, timeout)
        return self.seen(topic.value)

    async def order(self, order_id: str) -> OrderDocument:
        found = await self.store.load(order_id)
        assert found is not None, f"order {order_id} not stored"
        return found

    async def settled(
        self, order_id: str, check: Callable[[OrderDocument], bool], timeout: float = 30.0
    ) -> OrderDocument:
        """Wait until the stored order satisfies `check` and its outbox is sent."""
        order = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    order = await self.store.load(order_id)
                    if order is not None and check(order) and await self.store.is_settled(order):
                        return order
                    self.check_workers()
                    await asyncio.sleep(0.1)
        except (TimeoutError, asyncio.CancelledError) as stopped:
            state = "not stored" if order is None else f"status {order.status}"
            stopped.add_note(f"stopped waiting for order {order_id} to settle ({state})")
            raise


def batch_with_header_name(records: Sequence[Raw], name: bytes, value: bytes = b"v") -> bytes:
    """One record batch of `records`, each with a header named `name` (any bytes, UTF-8 or not,
    as librdkafka lets a producer send), valued `value`."""
    placeholder = b"Q" * len(name)
    builder = _DefaultRecordBatchBuilderPy(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=4 * 1024 * 1024,
    )
    for offset, record in enumerate(records):
        headers = [*(record.headers or []), (placeholder.decode(), value)]
        builder.append(offset, timestamp=None, key=record.key, value=record.value, headers=headers)
    batch = bytearray(builder.build())
    assert batch.count(placeholder) == len(records), "the placeholder must occur only as the name"
    batch = batch.replace(placeholder, name)
    # The CRC-32C covers everything from the attributes (offset 21) on; it sits at offset 17.
    struct.pack_into(">I", batch, 17, calc_crc32c(bytes(batch[21:])))
    return bytes(batch)
