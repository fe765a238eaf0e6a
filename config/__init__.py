"""Runtime configuration, read from the environment (CONTRACT.md, "Operator interface")."""

from __future__ import annotations

import os
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
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


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
    replication_factor: int = 1
    batch_size: int = 500
    kafka_security: dict[str, str] = field(default_factory=dict)

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
            or DEFAULT_KAFKA.replace("9092", env.get("FULFILLMENT_KAFKA_PORT") or "9092"),
            mongodb_uri=env.get("MONGODB_URI")
            or DEFAULT_MONGODB.replace("27017", env.get("FULFILLMENT_MONGODB_PORT") or "27017"),
            database=env.get("MONGODB_DATABASE") or DEFAULT_DATABASE,
            topic_prefix=env.get("FULFILLMENT_TOPIC_PREFIX", ""),
            group_id=env.get("FULFILLMENT_GROUP_ID") or "fulfillment-worker",
            partitions=_int_env("FULFILLMENT_PARTITIONS", 6),
            replication_factor=_int_env("FULFILLMENT_REPLICATION_FACTOR", 1),
            batch_size=_int_env("FULFILLMENT_BATCH_SIZE", 500),
            kafka_security=security,
        )

    def kafka_options(self) -> dict[str, Any]:
        """TLS/SASL keyword arguments for aiokafka clients."""
        from config.kafka_security import client_options

        return client_options(self.kafka_security)

    def broker_security(self) -> Any:
        """TLS/SASL for the FastStream broker (None for plaintext)."""
        from config.kafka_security import broker_security

        return broker_security(self.kafka_security)

    def topic(self, name: str) -> str:
        """The real topic name of a contract topic."""
        return f"{self.topic_prefix}{name}"
