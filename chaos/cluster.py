"""Broker faults of `fulfillment chaos` on the local stack, and a clock of completed orders.

On a cluster (`stack up --brokers 3`): SIGKILL the leader of the busiest input partition, or
the active KRaft controller, and start it again after DOWN_FOR seconds; a "broker restart" is
one node stopped (SIGTERM) and started. On one node it is the whole broker. The clock reads
`fulfillment.completed` and tells, per fault, the longest time no order completed at all and
the longest time one partition completed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import time
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from config import Settings, environment
from consumers.topics import replication_for, topic_configs
from schemas.names import INPUT_TOPICS, Topic
from stack import kafka

LEADER_KILL = "partition leader SIGKILL"
CONTROLLER_KILL = "active controller SIGKILL"
BROKER_RESTART = "broker restart"
CLUSTER_FAULTS = (LEADER_KILL, CONTROLLER_KILL)
BROKER_FAULTS = (*CLUSTER_FAULTS, BROKER_RESTART)
# A killed broker stays down this long: past its session timeout (3 s), so it is fenced and
# the partitions it led get new leaders, as in a real crash.
DOWN_FOR = 10.0
OFFSETS_TOPIC = "__consumer_offsets"
LOG_APPEND_TIME = 1  # a record's timestamp_type when the broker stamped it


@dataclass
class Stall:
    """How long, after a fault began, nothing completed: anywhere, and on the worst partition."""

    no_completion_s: float
    worst_partition_s: float
    worst_partition: int


def describe(stall: Stall) -> str:
    return (
        f"no order completed for {stall.no_completion_s:.1f}s, "
        f"partition {stall.worst_partition} for {stall.worst_partition_s:.1f}s"
    )


def is_cluster() -> bool:
    return kafka.recorded_layout().brokers > 1


def all_brokers() -> str:
    """Every node of the local stack: monitors must bootstrap while any one is down."""
    return kafka.bootstrap()


def monitored(base: Settings, local_stack: bool) -> Settings:
    """The run's settings: on a local cluster, bootstrapping from every node, so that the
    sender and the monitors reconnect while any one node is down."""
    if local_stack and is_cluster():
        return replace(base, kafka_bootstrap=all_brokers())
    return base


def worker_env(settings: Settings, slot: int) -> dict[str, str]:
    """What a chaos worker in `slot` adds to the lab's environment: a static group member id
    that its replacement after a SIGKILL reuses. The bootstrap list stays the lab's: every
    node, so a worker started while one node is down finds the cluster through another."""
    return {
        "FULFILLMENT_INSTANCE_ID": settings.group_id,
        "FULFILLMENT_WORKER_SLOT": str(slot),
        "FULFILLMENT_LOG_LEVEL": environment().chaos_worker_log_level,
    }


def cluster_schedule(
    leader_kills: int, controller_kills: int, duration: float
) -> list[tuple[float, str]]:
    """When the cluster faults happen: apart from the other faults (0.4 and 0.65 of the run)."""
    if not is_cluster():
        return []
    return [(0.25 * duration + 20 * i, LEADER_KILL) for i in range(leader_kills)] + [
        (0.8 * duration + 20 * i, CONTROLLER_KILL) for i in range(controller_kills)
    ]


class CompletionClock:
    """When `fulfillment.completed` records were appended, per partition (partitions follow
    the order id, as on the input topics).

    The lab's completed topic is created with `message.timestamp.type=LogAppendTime`, so a
    record's timestamp is the broker's own append time: the clock measures the pipeline,
    not how quickly this reader reconnects after a broker fault."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.arrivals: dict[int, list[float]] = {p: [] for p in range(settings.partitions)}
        # Wall-clock append times become monotonic ones, comparable with the faults' times.
        self._to_monotonic = time.monotonic() - time.time()

    async def prepare(self) -> None:
        """Create the completed topic, as the worker would, but stamped by the broker."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            topic = self.settings.topic(Topic.FULFILLMENTS_COMPLETED)
            if topic in await admin.list_topics():
                return
            brokers = len((await admin.describe_cluster())["brokers"])
            replicas = replication_for(self.settings.replication_factor, brokers)
            configs = topic_configs(replicas) | {"message.timestamp.type": "LogAppendTime"}
            await admin.create_topics(
                [NewTopic(topic, self.settings.partitions, replicas, topic_configs=configs)]
            )
        finally:
            await admin.close()

    async def run(self) -> None:
        """Read forever (cancel to stop); reconnects while brokers are bounced."""
        topic = self.settings.topic(Topic.FULFILLMENTS_COMPLETED)
        partitions = [TopicPartition(topic, p) for p in range(self.settings.partitions)]
        positions: dict[TopicPartition, int] = {}
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, request_timeout_ms=5000
            )
            try:
                await consumer.start()
                consumer.assign(partitions)
                for tp in partitions:
                    consumer.seek(tp, positions.get(tp, 0))
                while True:
                    batches = await consumer.getmany(timeout_ms=200)
                    now = time.monotonic()
                    for tp, records in batches.items():
                        self.arrivals[tp.partition] += [
                            record.timestamp / 1000 + self._to_monotonic
                            if record.timestamp_type == LOG_APPEND_TIME
                            else now
                            for record in records
                        ]
                        positions[tp] = records[-1].offset + 1
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    def stall(self, since: float, until: float) -> Stall:
        """Longest gaps between completions in [since, until], counting from `since`.

        Time after the run's last completion is not counted: nothing was left to complete."""
        everywhere = sorted(t for times in self.arrivals.values() for t in times)
        until = min(until, max(since, everywhere[-1] if everywhere else until))

        def longest(times: list[float]) -> float:
            inside = [since, *(t for t in times if since < t <= until), until]
            return max(b - a for a, b in itertools.pairwise(inside))

        per_partition = {p: longest(sorted(times)) for p, times in self.arrivals.items()}
        worst = max(per_partition, key=lambda p: per_partition[p])
        return Stall(round(longest(everywhere), 1), round(per_partition[worst], 1), worst)

    def first_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first completion after it; None if there was none."""
        later = [t for times in self.arrivals.values() for t in times if t > moment]
        return round(min(later) - moment, 1) if later else None


async def under_replicated(settings: Settings, bootstrap: str) -> int | None:
    """Partitions of the lab's topics and of the offsets topic whose in-sync replicas are
    fewer than their replicas; None while the cluster cannot be asked."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if name.startswith(settings.topic(""))]
        described = await admin.describe_topics([*names, OFFSETS_TOPIC])
        return sum(
            1
            for topic in described
            for partition in topic["partitions"]
            if len(partition["isr"]) < len(partition["replicas"])
        )
    except Exception:
        return None
    finally:
        await admin.close()


async def wait_in_sync(settings: Settings, timeout: float = 180) -> float:
    """Seconds until every replica of the lab's topics is in sync again (a restarted node has
    caught up): one broker fault at a time, never a second node down while one catches up."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while await under_replicated(settings, all_brokers()) != 0:
            await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 1)


async def busiest_leader(settings: Settings, bootstrap: str) -> int:
    """Node id leading the input partition with the most records (ties: the lowest)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    await consumer.start()
    try:
        topics = [settings.topic(t) for t in INPUT_TOPICS]
        ends = await consumer.end_offsets(
            [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        )
        leaders = {
            (described["topic"], partition["partition"]): partition["leader"]
            for described in await admin.describe_topics(topics)
            for partition in described["partitions"]
        }
        busiest = max(ends, key=lambda tp: (ends[tp], -tp.partition))
        return int(leaders[(busiest.topic, busiest.partition)])
    finally:
        await consumer.stop()
        await admin.close()


def active_controller() -> int:
    """The KRaft quorum leader, from the nodes' quorum-state files (highest epoch wins)."""
    best = (-1, -1)
    for node in kafka.nodes():
        path = node.folder / "data" / "__cluster_metadata-0" / "quorum-state"
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
            best = max(best, (int(state["leaderEpoch"]), int(state["leaderId"])))
    if best[1] < 0:
        raise RuntimeError("no KRaft quorum leader recorded")
    return best[1]


def _node(node_id: int) -> kafka.Node:
    return next(node for node in kafka.nodes() if node.node_id == node_id)


async def _start_and_wait(node: kafka.Node) -> float:
    """Start `node` and return the monotonic time at which it answers a metadata request."""
    await asyncio.to_thread(kafka.start_node, node)
    async with asyncio.timeout(120):
        while not await asyncio.to_thread(kafka.broker_count, node.address):
            await asyncio.sleep(0.25)
    return time.monotonic()


async def kill_and_restart(node_id: int, down_for: float = DOWN_FOR) -> float:
    """SIGKILL one node, leave it down for `down_for` seconds, start it again; return when it
    answered again (monotonic)."""
    node = _node(node_id)
    pid = node.service().pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while node.service().started_process_alive():
            await asyncio.sleep(0.05)
    await asyncio.sleep(down_for)
    return await _start_and_wait(node)


async def restart_broker(node_id: int | None = None) -> float:
    """Stop (SIGTERM, controlled shutdown) and start one node: the only one on a single-node
    stack. Returns when it answered again (monotonic)."""
    node = _node(node_id or 1)
    await asyncio.to_thread(node.service().stop)
    return await _start_and_wait(node)


async def broker_fault(kind: str, settings: Settings) -> tuple[str, float]:
    """Run one broker fault; return which node it hit and when that node answered again."""
    if kind == LEADER_KILL:
        node_id = await busiest_leader(settings, all_brokers())
        back = await kill_and_restart(node_id)
    elif kind == CONTROLLER_KILL:
        node_id = active_controller()
        back = await kill_and_restart(node_id)
    else:
        # On a cluster, the node leading the busiest partition: a restart that matters.
        node_id = await busiest_leader(settings, all_brokers()) if is_cluster() else 1
        back = await restart_broker(node_id)
    return f"node {node_id}", back
