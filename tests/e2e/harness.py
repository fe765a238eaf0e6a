"""Drives a real worker process: publishes inputs, reads outputs, dead letters and documents."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.fernet import Fernet

from config import Settings, project_root
from consumers.topics import ensure_topics
from schemas.document import OrderDocument
from schemas.names import DLQ_SUFFIX, OUTPUT_TOPICS, Topic
from store.orders import OrderStore, connect
from tests.conftest import Infra, Names

Record = dict[str, Any]


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
        log = (self.log_dir / f"worker-{len(self.workers)}.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "consumers.worker"],
            env=self.worker_env() | env,
            cwd=project_root(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

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
            code = worker.poll()
            assert code in (None, -signal.SIGKILL), (
                f"worker exited with {code}:\n{self.logs()[-3000:]}"
            )

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
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        await self.producer.send_and_wait(
            self.settings.topic(topic), value, key=key, headers=headers
        )

    async def _read(self) -> None:
        if self._consumer is None:
            topics = [self.settings.topic(t) for t in OUTPUT_TOPICS]
            topics += [
                f"{self.settings.topic(t)}{DLQ_SUFFIX}"
                for t in Topic
                if not t.startswith(("fulfillments.c", "orders.s"))
            ]
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
                    "raw": record.value,
                }
                with contextlib.suppress(ValueError, TypeError):
                    entry |= json.loads(record.value)
                self._seen.setdefault(name, []).append(entry)

    def seen(self, topic: str) -> list[Record]:
        return self._seen.get(topic, [])

    async def until(
        self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
    ) -> None:
        """Read outputs until `condition` holds."""
        async with asyncio.timeout(timeout):
            while not condition():
                self.check_workers()
                await self._read()
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
        async with asyncio.timeout(timeout):
            while True:
                order = await self.store.load(order_id)
                if order is not None and check(order) and await self.store.is_settled(order):
                    return order
                self.check_workers()
                await asyncio.sleep(0.1)
