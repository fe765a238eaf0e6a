"""Kafka TLS and SASL (PLAIN, SCRAM-SHA-256/512) for every Kafka client, from the settings."""

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

from config.environment import ConfigError

_MECHANISMS: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def security_protocol(options: Mapping[str, str]) -> str:
    """KAFKA_SECURITY_PROTOCOL as given, upper case; PLAINTEXT when unset."""
    return options.get("security_protocol", "PLAINTEXT").upper()


def broker_security(options: Mapping[str, str]) -> BaseSecurity | None:
    """FastStream's security object for KAFKA_SECURITY_PROTOCOL and friends; None for plaintext."""
    protocol = security_protocol(options)
    if protocol == "PLAINTEXT":
        return None
    if protocol not in ("SSL", "SASL_SSL", "SASL_PLAINTEXT"):
        raise ConfigError(
            f"KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not {protocol!r}"
        )
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = _tls_context(options.get("ssl_cafile")) if use_ssl else None
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


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    """The client's TLS context, trusting `cafile` (else the system's CAs)."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except OSError as problem:  # ssl.SSLError too: a file that holds no certificate
        reason = problem.strerror or type(problem).__name__
        raise ConfigError(f"KAFKA_SSL_CAFILE {cafile!r} cannot be used: {reason}") from None


def client_options(options: Mapping[str, str]) -> dict[str, Any]:
    """The same settings as keyword arguments of aiokafka's producer, consumer and admin client."""
    return parse_security(broker_security(options))


class KafkaRefused(Exception):
    """The broker answers but refuses this client (TLS or SASL): retrying cannot help."""


async def refusal(bootstrap: str, options: Mapping[str, str], timeout_ms: int = 4000) -> str | None:
    """Why the first broker that answers refuses us, in one line; None when one accepts us or
    none answers (an outage, which callers report as such).

    aiokafka only logs the cause of a failed bootstrap and raises "Unable to bootstrap", so
    one connection is opened here the same way to tell a wrong password or an untrusted
    certificate from a broker that is down.
    """
    if broker_security(options) is None:
        return None
    from aiokafka.conn import create_conn
    from aiokafka.errors import IllegalSaslStateError, KafkaError, SaslAuthenticationFailed

    protocol = security_protocol(options)
    kwargs = client_options(options)
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            connection = await create_conn(host, int(port), request_timeout_ms=timeout_ms, **kwargs)
        except ssl.SSLCertVerificationError as problem:
            return (
                f"Kafka at {address} presented a certificate that is not trusted "
                f"({problem.verify_message}); KAFKA_SSL_CAFILE must hold the CA that signed it"
            )
        except ssl.SSLError as problem:
            return f"TLS with Kafka at {address} failed: {problem.reason or problem}"
        except SaslAuthenticationFailed:
            user = options.get("sasl_username", "")
            mechanism = options.get("sasl_mechanism", "SCRAM-SHA-512").upper()
            return (
                f"Kafka at {address} refused the {mechanism} login of {user!r}: "
                "check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        except IllegalSaslStateError:
            return (
                f"Kafka at {address} takes no SASL login on this listener:"
                f" KAFKA_SECURITY_PROTOCOL is {protocol}; check the listener's protocol"
            )
        except ConnectionResetError:
            # A plaintext listener drops a TLS handshake; so may a broker going down. Only
            # one that then answers a plaintext request is a settings mismatch.
            if "SSL" not in protocol or not await _answers_plaintext(host, int(port), timeout_ms):
                continue
            return (
                f"Kafka at {address} closed the connection at the TLS handshake but answers"
                f" without TLS: KAFKA_SECURITY_PROTOCOL is {protocol}; check the listener's"
                " protocol"
            )
        except (OSError, KafkaError, TimeoutError, ValueError):
            continue  # not answering: the next address, else an outage
        connection.close()
        return None
    return None


async def _answers_plaintext(host: str, port: int, timeout_ms: int) -> bool:
    """Whether a Kafka broker answers at `host:port` without TLS or SASL."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError

    try:
        connection = await create_conn(host, port, request_timeout_ms=timeout_ms)
    except (OSError, KafkaError, TimeoutError, ValueError):
        return False
    connection.close()
    return True
