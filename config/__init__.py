"""Runtime configuration, read from the environment (CONTRACT.md, "Operator interface")."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.environment import (
    DEFAULT_KAFKA_PORT,
    DEFAULT_MONGODB_PORT,
    ConfigError,
    Environment,
    check_range,
    environment,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_KAFKA",
    "DEFAULT_MONGODB",
    "ConfigError",
    "Environment",
    "Settings",
    "cache_dir",
    "check_range",
    "environment",
    "is_loopback",
    "project_root",
    "stack_dir",
]

DEFAULT_KAFKA = f"localhost:{DEFAULT_KAFKA_PORT}"
DEFAULT_MONGODB = f"mongodb://localhost:{DEFAULT_MONGODB_PORT}"
DEFAULT_DATABASE = "fulfillment"
# aiokafka's own request timeout, which a client gets when `kafka_request_timeout_ms` is None.
AIOKAFKA_REQUEST_TIMEOUT_MS = 40_000


def project_root() -> Path:
    """The checkout this code runs from; the local stack keeps its data under it."""
    return Path(__file__).resolve().parent.parent


def stack_dir() -> Path:
    """Per-checkout state of the local stack (data, logs, pids, generated key)."""
    return environment().fulfillment_stack_dir or project_root() / ".stack"


def cache_dir() -> Path:
    """Shared download and build cache, reused by every clone on this machine."""
    env = environment()
    base = env.xdg_cache_home or Path.home() / ".cache"
    return env.fulfillment_cache_dir or base / "fulfillment-pipeline"


# Field -> (variable it comes from, lowest, highest): a batch of 0 would consume nothing.
_BOUNDS: dict[str, tuple[str, int, int | None]] = {
    "partitions": ("FULFILLMENT_PARTITIONS", 1, None),
    "replication_factor": ("FULFILLMENT_REPLICATION_FACTOR", 1, None),
    "batch_size": ("FULFILLMENT_BATCH_SIZE", 1, 10_000),
    "kafka_request_timeout_ms": ("the Kafka request timeout (ms)", 1, None),
}


def _instance_id(env: Environment) -> str | None:
    """FULFILLMENT_INSTANCE_ID, plus the worker's slot under `fulfillment worker --processes N`."""
    base = (env.fulfillment_instance_id or "").strip()
    if not base:
        return None
    slot = env.fulfillment_worker_slot
    return f"{base}-{slot}" if slot is not None else base


def _kafka_security(env: Environment) -> dict[str, str]:
    """The TLS/SASL variables that are set, under the names config.kafka_security reads."""
    password = env.kafka_sasl_password.get_secret_value() if env.kafka_sasl_password else None
    options = {
        "security_protocol": env.kafka_security_protocol,
        "sasl_mechanism": env.kafka_sasl_mechanism,
        "sasl_username": env.kafka_sasl_username,
        "sasl_password": password,
        "ssl_cafile": env.kafka_ssl_cafile,
    }
    return {key: value for key, value in options.items() if value}


@dataclass(frozen=True)
class Settings:
    """Everything the worker and CLI need to reach Kafka and the store."""

    kafka_bootstrap: str = DEFAULT_KAFKA
    mongodb_uri: str = DEFAULT_MONGODB
    database: str = DEFAULT_DATABASE
    # Extension: prefixes every contract topic, so tests and tenants can share a broker.
    topic_prefix: str = ""
    group_id: str = "fulfillment-worker"
    partitions: int = 6
    # None: 3 on a cluster of three or more brokers, else as many as there are brokers.
    replication_factor: int | None = None
    batch_size: int = 500
    kafka_security: dict[str, str] = field(default_factory=dict)
    # Short-lived commands set this so a hung broker fails fast; None keeps aiokafka's.
    kafka_request_timeout_ms: int | None = None
    # Static group membership (KIP-345): a restarted worker with the same id takes its
    # partitions back at once, without a rebalance. None: a dynamic member.
    group_instance_id: str | None = None
    # A member that stops heartbeating is dropped after this (the broker's minimum is 6 s);
    # heartbeats every second also make the others notice a rebalance within a second.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000

    def __post_init__(self) -> None:
        """Refuse out-of-range numbers at start, not as a worker that silently does nothing."""
        for name, (variable, low, high) in _BOUNDS.items():
            value = getattr(self, name)
            if value is not None:
                check_range(variable, value, low, high)

    @classmethod
    def from_env(cls, env: Environment | None = None) -> Settings:
        """The settings of `env` (default: this process's environment), checked like any."""
        env = env if env is not None else environment()
        return cls(
            # Unset means the local stack, on its configured ports.
            kafka_bootstrap=env.kafka_bootstrap_servers
            or f"localhost:{env.fulfillment_kafka_port}",
            mongodb_uri=env.mongodb_uri or f"mongodb://localhost:{env.fulfillment_mongodb_port}",
            database=env.mongodb_database,
            topic_prefix=env.fulfillment_topic_prefix,
            group_id=env.fulfillment_group_id,
            partitions=env.fulfillment_partitions,
            # 0 asks for the default, as an unset variable does.
            replication_factor=env.fulfillment_replication_factor or None,
            batch_size=env.fulfillment_batch_size,
            kafka_security=_kafka_security(env),
            group_instance_id=_instance_id(env),
        )

    @property
    def kafka_request_timeout_s(self) -> float:
        """How long one Kafka request may take, in seconds, aiokafka's default included."""
        return (self.kafka_request_timeout_ms or AIOKAFKA_REQUEST_TIMEOUT_MS) / 1000

    def kafka_options(self) -> dict[str, Any]:
        """TLS/SASL keyword arguments for aiokafka clients."""
        # Imported here: FastStream takes seconds to import and the stack's commands need none.
        from config.kafka_security import client_options

        options = client_options(self.kafka_security)
        if self.kafka_request_timeout_ms is not None:
            options["request_timeout_ms"] = self.kafka_request_timeout_ms
        return options

    def broker_security(self) -> Any:
        """TLS/SASL for the FastStream broker (None for plaintext)."""
        from config.kafka_security import broker_security  # imported here, as above

        return broker_security(self.kafka_security)

    def topic(self, name: str) -> str:
        """The real topic name of a contract topic."""
        return f"{self.topic_prefix}{name}"

    def on_this_machine(self) -> bool:
        """Whether every Kafka bootstrap server and every store host is a loopback address."""
        if self.mongodb_uri.startswith("mongodb+srv:"):
            return False  # its hosts come from DNS
        servers = self.mongodb_uri.partition("://")[2].partition("/")[0].rpartition("@")[2]
        hosts = [*self.kafka_bootstrap.split(","), *servers.split(",")]
        return all(_is_loopback(host) for host in hosts)


def _is_loopback(server: str) -> bool:
    """`server` ("host", "host:port", "[v6]:port", "scheme://host:port") names this machine."""
    host = server.strip().rpartition("://")[2]
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return is_loopback(host)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, no port) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
