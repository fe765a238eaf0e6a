"""Runtime configuration, read from the environment (CONTRACT.md, "Operator interface")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_KAFKA = "localhost:9092"
DEFAULT_MONGODB = "mongodb://localhost:27017"
DEFAULT_DATABASE = "fulfillment"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""


def project_root() -> Path:
    """The checkout this code runs from; the local stack keeps its data under it."""
    return Path(__file__).resolve().parent.parent


def stack_dir() -> Path:
    """Per-checkout state of the local stack (data, logs, pids, generated key)."""
    return Path(os.environ.get("FULFILLMENT_STACK_DIR", project_root() / ".stack"))


def cache_dir() -> Path:
    """Shared download and build cache, reused by every clone on this machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("FULFILLMENT_CACHE_DIR", Path(base) / "fulfillment-pipeline"))


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def check_range(name: str, value: int, low: int, high: int | None = None) -> int:
    """`value` if low <= value <= high, else a one-line ConfigError naming the variable."""
    if value < low or (high is not None and value > high):
        allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {allowed}, got {value}")
    return value


def port_env(name: str, default: int) -> int:
    """A TCP port from the environment: an integer from 1 to 65535."""
    return check_range(name, _int_env(name, default), 1, 65535)


# Field -> (variable it comes from, lowest, highest): a batch of 0 would consume nothing.
_BOUNDS: dict[str, tuple[str, int, int | None]] = {
    "partitions": ("FULFILLMENT_PARTITIONS", 1, None),
    "replication_factor": ("FULFILLMENT_REPLICATION_FACTOR", 1, None),
    "batch_size": ("FULFILLMENT_BATCH_SIZE", 1, 10_000),
    "kafka_request_timeout_ms": ("the Kafka request timeout (ms)", 1, None),
}


def _instance_id(env: Mapping[str, str]) -> str | None:
    """FULFILLMENT_INSTANCE_ID, plus the worker's slot under `fulfillment worker --processes N`."""
    base = env.get("FULFILLMENT_INSTANCE_ID", "").strip()
    slot = env.get("FULFILLMENT_WORKER_SLOT", "").strip()
    if not base:
        return None
    return f"{base}-{slot}" if slot else base


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
    # Short-lived commands set this so a hung broker fails fast; None keeps aiokafka's 40 s.
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
    def from_env(cls) -> Settings:
        env = os.environ
        security = {
            key: env[var]
            for key, var in (
                ("security_protocol", "KAFKA_SECURITY_PROTOCOL"),
                ("sasl_mechanism", "KAFKA_SASL_MECHANISM"),
                ("sasl_username", "KAFKA_SASL_USERNAME"),
                ("sasl_password", "KAFKA_SASL_PASSWORD"),
                ("ssl_cafile", "KAFKA_SSL_CAFILE"),
            )
            if env.get(var)
        }
        return cls(
            # Unset means the local stack, on its configured ports.
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS")
            or DEFAULT_KAFKA.replace("9092", str(port_env("FULFILLMENT_KAFKA_PORT", 9092))),
            mongodb_uri=env.get("MONGODB_URI")
            or DEFAULT_MONGODB.replace("27017", str(port_env("FULFILLMENT_MONGODB_PORT", 27017))),
            database=env.get("MONGODB_DATABASE") or DEFAULT_DATABASE,
            topic_prefix=env.get("FULFILLMENT_TOPIC_PREFIX", ""),
            group_id=env.get("FULFILLMENT_GROUP_ID") or "fulfillment-worker",
            partitions=_int_env("FULFILLMENT_PARTITIONS", 6),
            replication_factor=_int_env("FULFILLMENT_REPLICATION_FACTOR", 0) or None,
            batch_size=_int_env("FULFILLMENT_BATCH_SIZE", 500),
            kafka_security=security,
            group_instance_id=_instance_id(env),
        )

    def kafka_options(self) -> dict[str, Any]:
        """TLS/SASL keyword arguments for aiokafka clients."""
        from config.kafka_security import client_options

        options = client_options(self.kafka_security)
        if self.kafka_request_timeout_ms is not None:
            options["request_timeout_ms"] = self.kafka_request_timeout_ms
        return options

    def broker_security(self) -> Any:
        """TLS/SASL for the FastStream broker (None for plaintext)."""
        from config.kafka_security import broker_security

        return broker_security(self.kafka_security)

    def topic(self, name: str) -> str:
        """The real topic name of a contract topic."""
        return f"{self.topic_prefix}{name}"
