"""`fulfillment stack up --brokers 3`: a three-node KRaft cluster whose topics survive a broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from chaos.cluster import LEADER_KILL
from chaos.oracle import MUST_BE_ZERO
from chaos.run import Plan, chaos
from config import Settings
from consumers.topics import ensure_topics
from stack.processes import free_port_run
from tests.conftest import Infra

pytestmark = pytest.mark.integration
FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")


@dataclass(frozen=True)
class Cluster:
    """A cluster started by the CLI in its own stack folder, on its own ports."""

    env: dict[str, str]
    base_port: int
    started_in: float

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.base_port + 2 * i}" for i in range(3))

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FULFILLMENT, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def pid(self, node: int) -> int:
        return int((Path(self.env["FULFILLMENT_STACK_DIR"]) / f"kafka-{node}.pid").read_text())


def running(pid: int) -> bool:
    """Whether `pid` runs: not gone and not a zombie left for init to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, infra: Infra) -> Iterator[Cluster]:
    # Three brokers and their controllers.
    base = free_port_run(6, start=24000)
    env = {
        key: value
        for key, value in os.environ.items()
        # Its own ports: an inherited controller port would be the shared stack's.
        if not key.startswith("KAFKA_")
        and key not in ("MONGODB_URI", "FULFILLMENT_KAFKA_CONTROLLER_PORT")
    }
    env |= {
        "FULFILLMENT_STACK_DIR": str(tmp_path_factory.mktemp("cluster") / "stack"),
        "FULFILLMENT_KAFKA_PORT": str(base),
        # The shared store is external here: only Kafka is started. The session's store, on
        # whatever port it runs (FULFILLMENT_MONGODB_PORT moves the local stack's).
        "MONGODB_URI": infra.mongodb_uri,
        "COLUMNS": "300",
    }
    started = time.monotonic()
    result = subprocess.run(
        [FULFILLMENT, "stack", "up", "--brokers", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    running = Cluster(env, base, time.monotonic() - started)
    print(f"three-node cluster up in {running.started_in:.1f}s")
    try:
        yield running
    finally:
        running.cli("stack", "down")


async def describe(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """The topic's partitions, once the broker asked describes every one with a leader: a broker
    learns of a topic created a moment ago only shortly after."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(30):
            while True:
                partitions: list[dict[str, Any]] = (await admin.describe_topics([topic]))[0][
                    "partitions"
                ]
                if partitions and all(p["leader"] >= 0 for p in partitions):
                    return partitions
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def min_insync(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})
        response = (await admin.describe_configs([resource]))[0]
        return str(
            next(
                entry[1] for entry in response.resources[0][4] if entry[0] == "min.insync.replicas"
            )
        )
    finally:
        await admin.close()


async def round_trip(bootstrap: str, topic: str, count: int = 50) -> list[bytes]:
    """Produce `count` records with acks=all, then read them back from the start."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [f"{topic}-{i}".encode() for i in range(count)]
        await asyncio.gather(*[await producer.send(topic, value, key=value) for value in sent])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    received += [record.value for record in records]
    finally:
        await consumer.stop()
    return sorted(received)


def test_three_nodes_start_and_status_shows_each(cluster: Cluster) -> None:
    result = cluster.cli("stack", "status")
    assert result.returncode == 0, result.stderr
    for node, offset in ((1, 0), (2, 2), (3, 4)):
        row = next(line for line in result.stdout.splitlines() if f"kafka-{node} " in line)
        assert "ready" in row and f"127.0.0.1:{cluster.base_port + offset}" in row, row


async def test_contract_topics_get_three_replicas_and_two_in_sync_minimum(
    cluster: Cluster,
) -> None:
    result = cluster.cli("topics", "create")
    assert result.returncode == 0, result.stderr
    partitions = await describe(cluster.bootstrap, "orders.placed")
    assert partitions
    for partition in partitions:
        assert len(partition["replicas"]) == 3, partition
        assert sorted(partition["isr"]) == [1, 2, 3], partition
    assert await min_insync(cluster.bootstrap, "orders.placed") == "2"
    assert await round_trip(cluster.bootstrap, "orders.placed") == sorted(
        f"orders.placed-{i}".encode() for i in range(50)
    )


async def test_writes_go_on_with_one_broker_killed_and_it_rejoins_after_stack_up(
    cluster: Cluster,
) -> None:
    settings = Settings(kafka_bootstrap=cluster.bootstrap, topic_prefix="survive.", partitions=3)
    await ensure_topics(settings)
    topic = settings.topic("orders.placed")
    os.kill(cluster.pid(3), signal.SIGKILL)
    # Two replicas in sync are enough for acks=all once the dead broker is fenced (3 s).
    assert len(await round_trip(cluster.bootstrap, topic)) == 50
    result = cluster.cli("stack", "up")  # idempotent: starts only the missing node
    assert result.returncode == 0, result.stderr
    async with asyncio.timeout(60):
        while not all(len(p["isr"]) == 3 for p in await describe(cluster.bootstrap, topic)):
            await asyncio.sleep(0.5)


async def test_chaos_on_the_cluster_loses_nothing_through_a_leader_kill_and_a_worker_kill(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The chaos run finds the cluster's nodes (pids, ports, quorum state) the way the CLI does.
    for name in ("FULFILLMENT_STACK_DIR", "FULFILLMENT_KAFKA_PORT"):
        monkeypatch.setenv(name, cluster.env[name])
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "FULFILLMENT_KAFKA_CONTROLLER_PORT"):
        monkeypatch.delenv(name, raising=False)
    plan = Plan(
        orders=800, workers=2, kills=1, broker_restarts=0, store_restarts=0, leader_kills=1, rate=20
    )
    base = Settings(kafka_bootstrap=cluster.bootstrap, mongodb_uri=cluster.env["MONGODB_URI"])
    report = await chaos(base, plan, tmp_path / "logs", print, local_stack=True)
    verdict = report.verdict
    assert verdict["orders_expected"] == 800
    for count in MUST_BE_ZERO:
        assert verdict[count] == 0, (count, verdict["examples"])
    assert report.unexpected_worker_exits == 0
    assert sorted(fault.kind for fault in report.faults) == [LEADER_KILL, "worker SIGKILL"]
    leader = next(fault for fault in report.faults if fault.kind == LEADER_KILL)
    # The killed node came back and caught up; orders completed again while it was away.
    assert leader.broker_back_after is not None and leader.in_sync_after is not None
    assert leader.stall is not None and leader.stall.no_completion_s < leader.broker_back_after


def test_down_stops_every_node(cluster: Cluster) -> None:
    pids = [cluster.pid(node) for node in (1, 2, 3)]
    result = cluster.cli("stack", "down")
    assert result.returncode == 0, result.stderr
    assert not any(running(pid) for pid in pids)
    status = cluster.cli("stack", "status").stdout
    assert all(
        "stopped" in line for line in status.splitlines() if line.strip("│ ").startswith("kafka-")
    ), status
