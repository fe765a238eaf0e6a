"""Apache Kafka 4.x from Maven Central jars: one KRaft node, or a cluster of them, on loopback.

Every node is broker and controller (combined mode). Node i (0-based) listens on
FULFILLMENT_KAFKA_PORT + 2i and its controller on the controller port + 2i, so a single node
keeps 9092/9093 and a three-node cluster takes 9092-9097. `--secure` turns the client and
inter-broker listener into SASL_SSL (SCRAM-SHA-512); the controller listener stays plaintext
on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from config import cache_dir, environment, stack_dir
from stack import tls
from stack.processes import Service, StackError, require_free_port, run_step, wait_until

HOST = "127.0.0.1"
POM = Path(__file__).parent / "kafka" / "pom.xml"
LAYOUT_FILE = "kafka-layout.json"
Say = Callable[[str], None]


def port() -> int:
    """FULFILLMENT_KAFKA_PORT: the client port of the first node."""
    return environment().fulfillment_kafka_port


def controller_port() -> int:
    """The controller port of the first node (FULFILLMENT_KAFKA_CONTROLLER_PORT, else port + 1)."""
    return environment().kafka_controller_port


@dataclass(frozen=True)
class Layout:
    """How many nodes the local Kafka has and whether its listeners are SASL_SSL."""

    brokers: int = 1
    secure: bool = False

    @property
    def folder(self) -> Path:
        """Data of this layout; each layout has its own, since storage is formatted per layout."""
        name = "kafka" if self.brokers == 1 else "kafka-cluster"
        return stack_dir() / (f"{name}-secure" if self.secure else name)


def recorded_layout() -> Layout:
    """The layout the last `stack up` chose (one plaintext node before any)."""
    try:
        return Layout(**json.loads((stack_dir() / LAYOUT_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return Layout()


def _record(layout: Layout) -> None:
    stack_dir().mkdir(parents=True, exist_ok=True)
    (stack_dir() / LAYOUT_FILE).write_text(json.dumps(asdict(layout)) + "\n")


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker and controller) of a layout."""

    index: int
    layout: Layout

    @property
    def node_id(self) -> int:
        return self.index + 1

    @property
    def port(self) -> int:
        return port() + 2 * self.index

    @property
    def controller_port(self) -> int:
        return controller_port() + 2 * self.index

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def folder(self) -> Path:
        if self.layout.brokers == 1:
            return self.layout.folder
        return self.layout.folder / f"node-{self.node_id}"

    def service(self) -> Service:
        # A single node keeps the historical names (kafka.pid, kafka.log).
        name = "kafka" if self.layout.brokers == 1 else f"kafka-{self.node_id}"
        return Service(name, stack_dir(), marker=str(self.folder / "server.properties"))


def nodes(layout: Layout | None = None) -> list[Node]:
    layout = layout or recorded_layout()
    return [Node(index, layout) for index in range(layout.brokers)]


def bootstrap(layout: Layout | None = None) -> str:
    """Every node's address: a client can bootstrap while any one of them is down."""
    return ",".join(node.address for node in nodes(layout))


def client_bootstrap(layout: Layout | None = None) -> str:
    """The addresses the stack hands to workers and commands: every node's, comma-separated.

    A client started while one node is down still finds the cluster through another.
    """
    return ",".join(node.address for node in nodes(layout))


@dataclass(frozen=True)
class Brokers(Service):
    """Every node of a layout as one service (pid, log and marker those of its first node)."""

    layout: Layout = Layout()

    @classmethod
    def of(cls, layout: Layout | None = None) -> Brokers:
        layout = layout or recorded_layout()
        first = nodes(layout)[0].service()
        return cls(first.name, first.folder, first.marker, layout)

    @property
    def nodes(self) -> list[Node]:
        return nodes(self.layout)

    def pids(self) -> list[int]:
        return [pid for node in self.nodes if (pid := node.service().pid()) is not None]

    def pid(self) -> int | None:
        """The first running node's pid, None when no node runs."""
        return next(iter(self.pids()), None)

    def started_process_alive(self) -> bool:
        return all(node.service().started_process_alive() for node in self.nodes)

    def log_tail(self, lines: int = 5) -> str:
        """The tail of the first dead node's log (of the first node when all run)."""
        dead = [n for n in self.nodes if not n.service().started_process_alive()]
        return (dead or self.nodes)[0].service().log_tail(lines)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop every node; True when at least one was running.

        All are signalled first: a node stopped alone after the others waits in vain for a
        controller quorum to approve its controlled shutdown, until the KILL.
        """
        for pid in self.pids():
            os.kill(pid, signal.SIGTERM)
        return [node.service().stop(timeout) for node in self.nodes].count(True) > 0


def service() -> Brokers:
    return Brokers.of()


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


def _listener_lines(node: Node, secrets: tls.Secrets | None) -> list[str]:
    listener = "SASL_SSL" if secrets else "PLAINTEXT"
    lines = [
        f"listeners={listener}://{node.address},CONTROLLER://{HOST}:{node.controller_port}",
        f"advertised.listeners={listener}://{node.address}",
        "controller.listener.names=CONTROLLER",
        f"inter.broker.listener.name={listener}",
        f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}",
    ]
    if secrets is None:
        return lines
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{tls.ADMIN_USER}" password="{secrets.admin_password}";'
    )
    return [
        *lines,
        f"sasl.enabled.mechanisms={tls.MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={tls.MECHANISM}",
        f"listener.name.sasl_ssl.{tls.MECHANISM.lower()}.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={secrets.keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={secrets.ca_file}",
    ]


def _replication_lines(brokers: int) -> list[str]:
    """Internal topics replicated over the cluster; failures noticed in seconds, not tens."""
    replicas = min(brokers, 3)
    min_isr = max(1, min(2, replicas - 1))
    lines = [
        f"offsets.topic.replication.factor={replicas}",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min_isr}",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        # Topics created without a replication factor (auto-created ones) get the cluster's.
        f"default.replication.factor={replicas}",
    ]
    if brokers > 1:
        # A killed broker is fenced, and so leaves every ISR, after the session timeout
        # (default 9 s); until then acks=all produces to partitions it followed wait.
        lines += ["broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=3000"]
    return lines


def _write_config(node: Node, secrets: tls.Secrets | None) -> Path:
    data = node.folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in nodes(node.layout))
    properties = node.folder / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={node.node_id}",
                f"controller.quorum.voters={voters}",
                *_listener_lines(node, secrets),
                f"log.dirs={data}",
                "num.partitions=6",
                "offsets.topic.num.partitions=6",
                *_replication_lines(node.layout.brokers),
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "delete.topic.enable=true",
                "",
            ]
        )
    )
    (node.folder / "log4j2.properties").write_text(
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
                # Each group's joins, rebalances and departures: what says why a worker
                # reads nothing (a group that keeps rebalancing, a member that was dropped).
                "logger.groups.name = org.apache.kafka.coordinator.group.GroupMetadataManager",
                "logger.groups.level = INFO",
                "",
            ]
        )
    )
    return properties


def _java(libs: Path, folder: Path, main: str, *args: str, heap: str = "1g") -> list[str]:
    return [
        "java",
        "-Xms256m",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        # The C1 compiler only: a restarted node answers in ~6 s instead of ~14 s on two busy
        # cores (C2 compiling Kafka's hot paths competes with everything else at start-up), and
        # a local stack's traffic never needs C2's peak speed.
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def _random_cluster_id() -> str:
    """A cluster id as Kafka makes one: 16 random bytes, URL-safe base64, never starting with
    "-", which the storage tool would read as an option (one id in 64 did: the format failed)."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def _cluster_id(layout: Layout) -> str:
    """One id for every node of a layout, made at its first format.

    The nodes are formatted side by side: the id is linked into place only when none is
    there, so a second formatter reads the first one's id instead of writing its own (nodes formatted with
    different ids refuse each other's votes and exit).
    """
    path = layout.folder / "cluster.id"
    layout.folder.mkdir(parents=True, exist_ok=True)
    made = _random_cluster_id()
    draft = path.with_name(f"cluster.id.{made}")
    draft.write_text(made + "\n")
    try:
        os.link(draft, path)  # atomic, and fails when another formatter's id is there
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def _format(libs: Path, node: Node, properties: Path, secrets: tls.Secrets | None) -> None:
    if (node.folder / "data" / "meta.properties").exists():
        return
    users: list[str] = []
    if secrets is not None:
        # SCRAM users go into the bootstrap metadata: they exist before the first start.
        for name, password in (
            (tls.ADMIN_USER, secrets.admin_password),
            (tls.CLIENT_USER, secrets.client_password),
        ):
            users += ["--add-scram", f"{tls.MECHANISM}=[name={name},password={password}]"]
    run_step(
        _java(
            libs,
            node.folder,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(node.layout),
            "-c",
            str(properties),
            "--ignore-formatted",
            *users,
        ),
        cwd=node.folder,
        log=node.folder / "format.log",
        what="formatting the Kafka storage",
    )


def probe_options(layout: Layout | None = None) -> dict[str, str]:
    """Settings.kafka_security the stack itself uses to reach its broker."""
    layout = layout or recorded_layout()
    secrets = tls.load() if layout.secure else None
    return secrets.admin_options() if secrets else {}


def broker_count(
    servers: str | None = None,
    timeout_ms: int = 3000,
    security: Mapping[str, str] | None = None,
) -> int:
    """How many brokers the cluster's metadata lists; 0 when none answers."""
    from aiokafka.admin import AIOKafkaAdminClient

    from config.kafka_security import client_options

    # Refused connections are expected while the broker starts; aiokafka would log each one.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    options = client_options(probe_options() if security is None else security)

    async def probe() -> int:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=servers or bootstrap(), request_timeout_ms=timeout_ms, **options
        )
        try:
            await admin.start()
            await admin.list_topics()
            return len(admin._client.cluster.brokers())
        except Exception:
            return 0
        finally:
            await admin.close()

    return asyncio.run(probe())


def is_ready(servers: str | None = None, timeout_ms: int = 3000) -> bool:
    """True when the broker answers a metadata request (external ones: with the env's security)."""
    if servers is None:
        return broker_count(timeout_ms=timeout_ms) >= recorded_layout().brokers
    from config import Settings

    return broker_count(servers, timeout_ms, Settings.from_env().kafka_security) > 0


def _check_layout(wanted: Layout) -> None:
    """Refuse to start a second layout beside one that runs: they would share the ports."""
    running = recorded_layout()
    if running != wanted and Brokers.of(running).pids():
        raise StackError(
            f"a {_describe(running)} Kafka runs; `fulfillment stack down` before starting a {_describe(wanted)} one"
        )


def _describe(layout: Layout) -> str:
    size = "1-node" if layout.brokers == 1 else f"{layout.brokers}-node"
    return f"{size} {'SASL_SSL' if layout.secure else 'plaintext'}"


def start_node(node: Node, libs: Path | None = None) -> None:
    """Start one node of the recorded layout (a chaos fault restarts a killed one)."""
    svc = node.service()
    if svc.pid() is not None:
        return
    libs = libs or jars_dir(lambda _: None)
    elsewhere = "set FULFILLMENT_KAFKA_PORT to start one elsewhere"
    require_free_port(
        HOST, node.port, "Kafka", f"{elsewhere}, or KAFKA_BOOTSTRAP_SERVERS to use that broker"
    )
    require_free_port(HOST, node.controller_port, "the Kafka controller", elsewhere)
    secrets = tls.ensure() if node.layout.secure else None
    properties = _write_config(node, secrets)
    _format(libs, node, properties, secrets)
    # Three JVMs share two cores and memory with everything else: smaller heaps for a cluster.
    heap = "1g" if node.layout.brokers == 1 else "512m"
    svc.start(_java(libs, node.folder, "kafka.Kafka", str(properties), heap=heap))


def up(say: Say, layout: Layout | None = None) -> str:
    """Start the nodes of `layout` (default: the recorded one) that are not running; return
    the bootstrap address once every node answers."""
    layout = layout or recorded_layout()
    _check_layout(layout)
    if shutil.which("java") is None:
        raise StackError("Java is not installed; the local Kafka broker needs Java 17 or newer")
    _record(layout)
    group = Brokers.of(layout)
    if len(group.pids()) < layout.brokers:
        libs = jars_dir(say)
        say(f"starting {_describe(layout)} Kafka on {bootstrap(layout)} ...")
        if layout.secure:
            tls.ensure()  # once, before the nodes read it
        # Formatting is a JVM run per node: side by side, a cluster's first start is ~10 s shorter.
        _cluster_id(layout)  # made once, before the formatters read it
        with ThreadPoolExecutor(len(group.nodes)) as pool:
            list(pool.map(lambda node: start_node(node, libs), group.nodes))
    wait_until(is_ready, group, "Kafka", timeout=120)
    if layout.secure:
        written = tls.write_env_file(tls.ensure(), client_bootstrap(layout))
        say(f"SASL_SSL: clients need the settings in {written} (`. {written}`)")
    return client_bootstrap(layout)
