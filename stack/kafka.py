"""Apache Kafka 4.x from Maven Central jars, one KRaft node (broker and controller) on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from config import cache_dir, stack_dir
from stack.processes import Service, StackError, require_free_port, run_step, wait_until

HOST = "127.0.0.1"
POM = Path(__file__).parent / "kafka" / "pom.xml"
Say = Callable[[str], None]


def port() -> int:
    return int(os.environ.get("FULFILLMENT_KAFKA_PORT", "9092"))


def controller_port() -> int:
    return int(os.environ.get("FULFILLMENT_KAFKA_CONTROLLER_PORT", str(port() + 1)))


def bootstrap() -> str:
    return f"{HOST}:{port()}"


def service() -> Service:
    return Service("kafka", stack_dir(), marker=str(stack_dir() / "kafka" / "server.properties"))


def jars_dir(say: Say) -> Path:
    """The broker's jars, fetched once per pom into the shared cache."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    target = cache_dir() / f"kafka-{digest}"
    if (target / ".complete").exists():
        return target / "libs"
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is not installed; it is needed once to fetch the Kafka jars")
    say(f"fetching Apache Kafka jars from Maven Central into {target} (first run only) ...")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(POM, target / "pom.xml")
    run_step(
        [
            "mvn",
            "-B",
            "--no-transfer-progress",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target / 'libs'}",
        ],
        cwd=target,
        log=target / "mvn.log",
        what="fetching the Kafka jars with Maven",
    )
    (target / ".complete").write_text("ok\n")
    return target / "libs"


def _write_config(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    properties = folder / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{HOST}:{controller_port()}",
                f"listeners=PLAINTEXT://{HOST}:{port()},CONTROLLER://{HOST}:{controller_port()}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{port()}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=6",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=6",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "delete.topic.enable=true",
                "",
            ]
        )
    )
    (folder / "log4j2.properties").write_text(
        "\n".join(
            [
                "status = warn",
                "appender.console.type = Console",
                "appender.console.name = STDOUT",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = WARN",
                "rootLogger.appenderRefs = stdout",
                "rootLogger.appenderRef.stdout.ref = STDOUT",
                "logger.kafka.name = kafka.server.KafkaServer",
                "logger.kafka.level = INFO",
                "",
            ]
        )
    )
    return properties


def _java(libs: Path, folder: Path, main: str, *args: str) -> list[str]:
    return [
        "java",
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def _format(libs: Path, folder: Path, properties: Path) -> None:
    if (folder / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    run_step(
        _java(
            libs,
            folder,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(properties),
            "--ignore-formatted",
        ),
        cwd=folder,
        log=folder / "format.log",
        what="formatting the Kafka storage",
    )


def is_ready(servers: str | None = None, timeout_ms: int = 3000) -> bool:
    """True when the broker answers a metadata request."""
    from aiokafka.admin import AIOKafkaAdminClient

    # Refused connections are expected while the broker starts; aiokafka would log each one.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=servers or bootstrap(), request_timeout_ms=timeout_ms
        )
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def up(say: Say) -> str:
    """Start the broker unless ours already runs; return its bootstrap address."""
    svc = service()
    if svc.pid() is not None:
        wait_until(is_ready, svc, "Kafka", timeout=90)
        return bootstrap()
    if shutil.which("java") is None:
        raise StackError("Java is not installed; the local Kafka broker needs Java 17 or newer")
    libs = jars_dir(say)
    require_free_port(HOST, port(), "Kafka")
    require_free_port(HOST, controller_port(), "the Kafka controller")
    folder = stack_dir() / "kafka"
    properties = _write_config(folder)
    _format(libs, folder, properties)
    say(f"starting Kafka on {bootstrap()} ...")
    svc.start(_java(libs, folder, "kafka.Kafka", str(properties)))
    wait_until(is_ready, svc, "Kafka", timeout=90)
    return bootstrap()
