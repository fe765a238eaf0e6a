"""Kafka TLS and SASL (PLAIN, SCRAM-SHA-256/512) from the environment, for every Kafka client."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from faststream.kafka.security import parse_security
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from config import ConfigError

_MECHANISMS: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def broker_security(options: Mapping[str, str]) -> BaseSecurity | None:
    """FastStream's security object for KAFKA_SECURITY_PROTOCOL and friends; None for plaintext."""
    protocol = options.get("security_protocol", "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol not in ("SSL", "SASL_SSL", "SASL_PLAINTEXT"):
        raise ConfigError(
            f"KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not {protocol!r}"
        )
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=options.get("ssl_cafile")) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    mechanism = options.get("sasl_mechanism", "SCRAM-SHA-512").upper()
    if mechanism not in _MECHANISMS:
        raise ConfigError(
            f"KAFKA_SASL_MECHANISM must be one of {', '.join(_MECHANISMS)}, not {mechanism!r}"
        )
    username, password = options.get("sasl_username"), options.get("sasl_password")
    if not username or not password:
        raise ConfigError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with SASL")
    return _MECHANISMS[mechanism](username, password, ssl_context=context, use_ssl=use_ssl)


def client_options(options: Mapping[str, str]) -> dict[str, Any]:
    """The same settings as keyword arguments of aiokafka's producer, consumer and admin client."""
    return parse_security(broker_security(options))
