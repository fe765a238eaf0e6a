"""Settings and Kafka security come from the environment, with one-line errors."""

from __future__ import annotations

import pytest
from faststream.security import BaseSecurity, SASLScram512

from config import ConfigError, Settings
from config.kafka_security import broker_security, client_options


def test_defaults_follow_the_contract() -> None:
    settings = Settings()
    assert (settings.kafka_bootstrap, settings.mongodb_uri, settings.database) == (
        "localhost:9092",
        "mongodb://localhost:27017",
        "fulfillment",
    )


def test_local_stack_ports_move_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FULFILLMENT_KAFKA_PORT", "39092")
    monkeypatch.setenv("FULFILLMENT_MONGODB_PORT", "37017")
    settings = Settings.from_env()
    assert settings.kafka_bootstrap == "localhost:39092"
    assert settings.mongodb_uri == "mongodb://localhost:37017"


def test_sasl_scram_over_tls_configures_every_kafka_client() -> None:
    options = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "u",
        "sasl_password": "p",
    }
    assert isinstance(broker_security(options), SASLScram512)
    kwargs = client_options(options)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "u" and kwargs["ssl_context"] is not None


def test_tls_only_and_plaintext() -> None:
    assert isinstance(broker_security({"security_protocol": "SSL"}), BaseSecurity)
    assert broker_security({}) is None and client_options({}) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"security_protocol": "SASL_SSL"},
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "GSSAPI",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            "KAFKA_SASL_MECHANISM",
        ),
        ({"security_protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_bad_security_settings_are_one_line_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        broker_security(options)


def test_non_numeric_partitions_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULFILLMENT_PARTITIONS", "six")
    with pytest.raises(ConfigError, match="FULFILLMENT_PARTITIONS must be an integer"):
        Settings.from_env()
