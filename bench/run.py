"""`fulfillment bench`: every variant on the same stack and the same workload, in one run."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from cryptography.fernet import Fernet
from pymongo import InsertOne, ReplaceOne

from bench import floor
from bench.data import Workload, workload
from config import Settings, stack_dir
from consumers.processes import Process, spawn_worker, stop_processes
from consumers.topics import delete_prefixed_topics, ensure_topics
from schemas.names import INPUT_TOPICS, Topic
from store.orders import OrderStore, connect
from store.server import probe

Say = Callable[[str], None]


@dataclass
class Result:
    variant: str
    orders: int
    seconds: float
    orders_per_second: float
    note: str = ""
    # User + system CPU of the measured processes per input event, start-up excluded.
    cpu_us_per_event: float | None = None


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    orders: int
    results: list[Result] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    # None: a CPU ratio whose divisor was below what the clock counts (a tiny run's floor).
    ratios: dict[str, float | None] = field(default_factory=dict)


class Lab:
    """One isolated copy of the pipeline's topics and database per variant."""

    def __init__(self, base: Settings, name: str) -> None:
        token = uuid.uuid4().hex[:6]
        name = "".join(c if c.isalnum() else "-" for c in name)
        self.settings = Settings(
            kafka_bootstrap=base.kafka_bootstrap,
            mongodb_uri=base.mongodb_uri,
            database=f"bench_{name}_{token}".replace("-", "_"),
            topic_prefix=f"bench-{name}-{token}.",
            group_id=f"bench-{name}-{token}",
            partitions=base.partitions,
            batch_size=base.batch_size,
        )
        self.key = Fernet.generate_key().decode()
        self.logs = stack_dir() / "bench-logs" / self.settings.group_id
        self.logs.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap,
            "MONGODB_URI": s.mongodb_uri,
            "MONGODB_DATABASE": s.database,
            "FULFILLMENT_TOPIC_PREFIX": s.topic_prefix,
            "FULFILLMENT_GROUP_ID": s.group_id,
            "FULFILLMENT_PARTITIONS": str(s.partitions),
            "FULFILLMENT_BATCH_SIZE": str(s.batch_size),
            "FULFILLMENT_SECRET_KEY": self.key,
            "FULFILLMENT_METRICS_PORT": "off",
            "FULFILLMENT_LOG_LEVEL": "WARNING",
        }

    def spawn(
        self, module: str, count: int, args: Sequence[str] = ()
    ) -> list[subprocess.Popen[bytes]]:
        # Bench workers log at WARNING into the lab's folder; a silent failure would skew figures.
        return [
            spawn_worker(self.env(), self.logs / f"{module}-{index}.log", module, args)
            for index in range(count)
        ]

    async def cleanup(self) -> None:
        """Drop the lab's database and topics: a broker keeping every run's takes long to restart."""
        client = connect(self.settings.mongodb_uri)
        await client.drop_database(self.settings.database)
        await client.close()
        await delete_prefixed_topics(self.settings, [self.settings.topic_prefix])


async def wait_for_group(settings: Settings, members: int, timeout: float = 60) -> None:
    """Until the workers' consumer group is stable with every member, so no rebalance lands mid-run."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    response = (await admin.describe_consumer_groups([settings.group_id]))[0]
                except KafkaError as error:
                    # A fresh broker has no group coordinator until its offsets topic exists.
                    if not error.retriable:
                        raise
                else:
                    group = response.groups[0]
                    if group[2] == "Stable" and len(group[5]) == members:
                        return
                await asyncio.sleep(0.2)
    except TimeoutError:
        # Not a TimeoutError: the CLI would report that as Kafka or the store out of reach.
        raise GroupNotStable(
            f"the workers' consumer group was not stable with {members} member(s) within"
            f" {timeout:.0f}s; see the worker logs"
        ) from None
    finally:
        await admin.close()


async def preload(settings: Settings, work: Workload) -> None:
    """All input events onto their topics before the clock starts, round-robin by order."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks="all",
    )
    await producer.start()
    try:
        pending = []
        for index in range(work.orders):
            for topic, records in work.by_topic().items():
                key, value = records[index]
                pending.append(await producer.send(settings.topic(topic), value, key=key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


class GroupNotStable(RuntimeError):
    """The measured workers never formed their consumer group: the run failed, nothing is away."""


class VariantTooSlow(RuntimeError):
    """A variant did not finish within the bench's --timeout."""


class Arrivals:
    """Counts distinct events on one output topic and when each key's first one arrived."""

    def __init__(self, settings: Settings, topic: str, variant: str) -> None:
        self.settings = settings
        self.topic = topic
        self.variant = variant
        self.first_seen: dict[bytes, float] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await self._consumer.start()

    async def until(
        self, count: int, timeout: float, alive: Callable[[], None] = lambda: None
    ) -> float:
        """Wait until `count` keys were seen; return the monotonic time it happened."""
        assert self._consumer is not None
        try:
            async with asyncio.timeout(timeout):
                while len(self.first_seen) < count:
                    alive()
                    for records in (
                        await self._consumer.getmany(timeout_ms=100, max_records=5000)
                    ).values():
                        now = time.monotonic()
                        for record in records:
                            self.first_seen.setdefault(record.key or b"", now)
        except TimeoutError:
            # Not an outage: the variant was too slow for --timeout.
            raise VariantTooSlow(
                f"{self.variant}: {len(self.first_seen):,} of {count:,} orders completed"
                f" within {timeout:g} s"
            ) from None
        return max(self.first_seen.values())

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def measured(name: str, work: Workload, seconds: float, note: str, say: Say) -> Result:
    """One variant's figures, announced as they come."""
    result = Result(name, work.orders, seconds, work.orders / seconds, note)
    say(f"{name}: {result.orders_per_second:,.0f} orders/s ({seconds:.1f}s)")
    return result


def cpu_seconds(processes: Sequence[Process]) -> float:
    """User plus system CPU time the processes have used so far."""
    total = 0.0
    for process in processes:
        times = psutil.Process(process.pid).cpu_times()
        total += times.user + times.system
    return total


async def run_workers(
    base: Settings,
    name: str,
    module: str,
    processes: int,
    work: Workload,
    say: Say,
    timeout: float,
    args: Sequence[str] = (),
) -> Result:
    """Start the workers on empty topics, wait for a stable group, then send every event and
    clock until every order's fulfillment.completed is out; CPU is counted over the same span."""
    lab = Lab(base, name)
    await ensure_topics(lab.settings)
    arrivals = Arrivals(lab.settings, lab.settings.topic(Topic.FULFILLMENTS_COMPLETED), name)
    await arrivals.start()
    workers = lab.spawn(module, processes, args)

    def alive() -> None:
        dead = [w.returncode for w in workers if w.poll() is not None]
        if dead:
            raise RuntimeError(f"{name}: a worker exited with {dead}")

    try:
        await wait_for_group(lab.settings, processes, timeout=120)
        cpu_before, started = cpu_seconds(workers), time.monotonic()
        await preload(lab.settings, work)
        finished = await arrivals.until(work.orders, timeout, alive)
        cpu = cpu_seconds(workers) - cpu_before
    finally:
        stop_processes(workers)
        await arrivals.stop()
        await lab.cleanup()
    result = measured(name, work, finished - started, f"{processes} process(es)", say)
    result.cpu_us_per_event = cpu / work.messages * 1e6
    say(f"{name}: {result.cpu_us_per_event:,.0f} µs CPU per input event")
    return result


async def kafka_ceiling(base: Settings, work: Workload, say: Say) -> Result:
    """aiokafka alone: consume every input record and produce one record per input, no processing."""
    lab = Lab(base, "kafka-ceiling")
    await ensure_topics(lab.settings)
    await preload(lab.settings, work)
    consumer = AIOKafkaConsumer(
        *(lab.settings.topic(t) for t in INPUT_TOPICS),
        bootstrap_servers=base.kafka_bootstrap,
        group_id=lab.settings.group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=base.kafka_bootstrap, linger_ms=5, acks="all", max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.monotonic()
    await consumer.start()
    out = lab.settings.topic(Topic.FULFILLMENTS_COMPLETED)
    moved = 0
    try:
        while moved < work.messages:
            batch = await consumer.getmany(timeout_ms=100, max_records=base.batch_size)
            pending = [
                await producer.send(out, r.value, key=r.key)
                for records in batch.values()
                for r in records
            ]
            await asyncio.gather(*pending)
            if pending:
                await consumer.commit()
            moved += len(pending)
        seconds = time.monotonic() - started
    finally:
        await consumer.stop()
        await producer.stop()
        await lab.cleanup()
    return measured(
        "kafka ceiling", work, seconds, f"{work.messages} records consumed and produced", say
    )


async def store_ceiling(base: Settings, work: Workload, steps: floor.Plan, say: Say) -> Result:
    """The store alone: the pipeline's documents (`steps`, from `floor.plan`), 3 compare-and-set
    writes per order, bulk-written."""
    lab = Lab(base, "store-ceiling")
    states = [[step.document for step in order_steps] for order_steps in steps.values()]
    client = connect(base.mongodb_uri)
    orders = client[lab.settings.database]["orders"]
    server = await probe(client)
    store = OrderStore(client, lab.settings.database, server.write_chunk)
    await store.ensure_indexes()
    batch = max(1, base.batch_size // 3)  # a worker's batch of 500 records holds ~170 orders
    started = time.monotonic()
    for step in range(3):
        for first in range(0, work.orders, batch):
            operations: list[InsertOne[dict[str, Any]] | ReplaceOne[dict[str, Any]]] = [
                InsertOne(states[i][0])
                if step == 0
                else ReplaceOne({"_id": states[i][step]["_id"], "version": step}, states[i][step])
                for i in range(first, min(first + batch, work.orders))
            ]
            for chunk in range(0, len(operations), store.write_chunk):
                part = operations[chunk : chunk + store.write_chunk]
                written = await orders.bulk_write(part, ordered=False)
                assert written.inserted_count + written.matched_count == len(part)
    seconds = time.monotonic() - started
    await client.drop_database(lab.settings.database)
    await client.close()
    note = f"{3 * work.orders} compare-and-set writes of the pipeline's documents, {batch} orders per bulk"
    return measured("store ceiling", work, seconds, note, say)


async def libraries_floor(
    base: Settings, work: Workload, steps: floor.Plan, say: Say, timeout: float
) -> Result:
    """aiokafka and pymongo doing our pipeline's writes and sends, made beforehand (`steps`,
    from `floor.plan`; bench.floor)."""
    path = stack_dir() / "bench-logs" / f"floor-plan-{uuid.uuid4().hex[:6]}.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    floor.save_plan(steps, path)
    try:
        return await run_workers(
            base, "libraries floor", "bench.floor", 1, work, say, timeout, [str(path)]
        )
    finally:
        path.unlink(missing_ok=True)


async def paced(
    base: Settings, work: Workload, rate: float, processes: int, say: Say
) -> dict[str, Any]:
    """Orders arrive at `rate` per second (3 events each); latency from the last event to completion."""
    lab = Lab(base, "paced")
    await ensure_topics(lab.settings)
    completed = lab.settings.topic(Topic.FULFILLMENTS_COMPLETED)
    arrivals = Arrivals(lab.settings, completed, "paced")
    await arrivals.start()
    workers = lab.spawn("consumers.worker", processes)
    producer = AIOKafkaProducer(bootstrap_servers=base.kafka_bootstrap, linger_ms=0, acks="all")
    await producer.start()
    sent_at: dict[bytes, float] = {}
    try:
        await wait_for_group(lab.settings, processes)
        # Completions are read while the events are being sent, so each is timed when it arrives.
        watching = asyncio.create_task(
            arrivals.until(work.orders, timeout=120 + work.orders / rate)
        )
        started = time.monotonic()
        for index in range(work.orders):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for topic, records in work.by_topic().items():
                key, value = records[index]
                await producer.send(lab.settings.topic(topic), value, key=key)
            sent_at[work.requested[index][0]] = time.monotonic()
        await producer.flush()
        await watching
    finally:
        await producer.stop()
        stop_processes(workers)
        await arrivals.stop()
        await lab.cleanup()
    latencies = sorted((arrivals.first_seen[key] - sent) * 1000 for key, sent in sent_at.items())
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    figures = {
        "orders_per_second": rate,
        "orders": work.orders,
        "processes": processes,
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "max_ms": latencies[-1],
    }
    say(f"paced {rate:,.0f} orders/s: p50 {q[49]:.0f} ms, p95 {q[94]:.0f} ms, p99 {q[98]:.0f} ms")
    return figures


def machine() -> dict[str, object]:
    """What a report's figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


async def bench(base: Settings, orders: int, paced_orders: int, say: Say, timeout: float) -> Report:
    report = Report(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        orders=orders,
    )
    work = workload(orders, uuid.uuid4().hex[:6])
    say(f"workload: {orders:,} orders, {work.messages:,} input events")
    # Each order's documents and outputs as the pipeline makes them: for the store ceiling
    # and the libraries floor alike.
    planned = floor.plan(work)
    steps: list[Callable[[], Awaitable[Result]]] = [
        lambda: kafka_ceiling(base, work, say),
        lambda: store_ceiling(base, work, planned, say),
        lambda: run_workers(base, "relay floor", "bench.relay", 1, work, say, timeout),
        lambda: libraries_floor(base, work, planned, say, timeout),
        lambda: run_workers(base, "naive peer", "bench.naive", 1, work, say, timeout),
        lambda: run_workers(base, "pipeline x1", "consumers.worker", 1, work, say, timeout),
        lambda: run_workers(base, "pipeline x2", "consumers.worker", 2, work, say, timeout),
    ]
    for step in steps:
        report.results.append(await step())
    rate = {r.variant: r.orders_per_second for r in report.results}
    best = max(rate["pipeline x1"], rate["pipeline x2"])
    ceiling = min(rate["kafka ceiling"], rate["store ceiling"])
    cpu = {r.variant: r.cpu_us_per_event or 0.0 for r in report.results}
    report.ratios = {
        "ours_vs_naive": best / rate["naive peer"],
        "ours_vs_lower_ceiling": best / ceiling,
        "naive_cpu_vs_ours": ratio(cpu["naive peer"], cpu["pipeline x1"]),
        "ours_cpu_vs_floor": ratio(cpu["pipeline x1"], cpu["relay floor"]),
        "ours_cpu_vs_libraries_floor": ratio(cpu["pipeline x1"], cpu["libraries floor"]),
    }
    paced_work = workload(paced_orders, uuid.uuid4().hex[:6])
    report.latency = await paced(base, paced_work, rate=best / 2, processes=2, say=say)
    return report


def ratio(numerator: float, divisor: float) -> float | None:
    """`numerator / divisor`, or None when the divisor is 0: process CPU is counted in clock
    ticks (10 ms), which a tiny run's relay floor may not reach."""
    return numerator / divisor if divisor else None


def write(report: Report, folder: Path) -> tuple[Path, Path | None]:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = report.started.replace(":", "").replace("-", "")
    data = folder / f"bench-{stamp}.json"
    data.write_text(json.dumps(asdict(report), indent=2) + "\n")
    (folder / "latest.json").write_text(data.read_text())
    return data, chart(report, folder / f"bench-{stamp}.png")


def _color(variant: str) -> str:
    """Ours blue, the naive peer red, floors and ceilings grey."""
    if variant.startswith("pipeline"):
        return "#1f77b4"
    return "#d62728" if variant == "naive peer" else "#999"


def chart(report: Report, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (left, middle, right) = plt.subplots(
        1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [3, 3, 2]}
    )
    names = [r.variant for r in report.results]
    colors = [_color(name) for name in names]
    rates = [r.orders_per_second for r in report.results]
    left.barh(names, rates, color=colors)
    left.set_xscale("log")  # the Kafka ceiling is far above the rest
    for row, rate in enumerate(rates):
        left.text(rate, row, f" {rate:,.0f}", va="center")
    left.set_xlabel("orders/s (3 events each), log scale")
    left.set_title(f"Throughput, {report.orders:,} orders")
    left.invert_yaxis()
    measured_cpu = [r for r in report.results if r.cpu_us_per_event]
    cpu = [r.cpu_us_per_event or 0.0 for r in measured_cpu]
    middle.barh(
        [r.variant for r in measured_cpu], cpu, color=[_color(r.variant) for r in measured_cpu]
    )
    middle.set_xscale("log")
    for row, value in enumerate(cpu):
        middle.text(value, row, f" {value:,.0f} µs", va="center")
    middle.set_xlabel("worker CPU (user + system) per input event, µs, log scale")
    middle.set_title("CPU per event (lower is better)")
    middle.invert_yaxis()
    if report.latency:
        keys = ["p50_ms", "p95_ms", "p99_ms"]
        right.bar([k[:-3] for k in keys], [report.latency[k] for k in keys], color="#1f77b4")
        right.set_ylabel("ms, last event published -> fulfillment.completed")
        right.set_title(f"Latency at {report.latency['orders_per_second']:,.0f} orders/s")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
