"""Credentials are sealed at rest and opened only in `fulfillment.completed`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import ConfigError
from consumers.sealing import Sealer, UnknownKey
from schemas.cloudevents import CloudEvent
from schemas.document import OutboxMessage
from schemas.events import Credentials, Distribution, FulfillmentCompleted
from schemas.names import EventType, OrderStatus
from tests.factories import T0

SECRET = "s3cr3t-pass"


def test_sealed_distribution_holds_no_plain_credentials_and_opens_in_completed_events() -> None:
    sealer = Sealer(Fernet.generate_key().decode())
    sealed = sealer.seal_distribution(
        Distribution(line_id="D1", credentials=Credentials(username="ada", password=SECRET))
    )
    assert sealed.credentials is None
    assert sealed.sealed_credentials and SECRET not in sealed.sealed_credentials
    completed = FulfillmentCompleted(
        order_id="ord-1",
        order_number="#1",
        fulfillment_id="f1",
        lines=[],
        distributions=[sealed],
        order_status=OrderStatus.FULFILLED,
    )
    event = CloudEvent("evt-1", EventType.FULFILLMENT_COMPLETED, "urn:t", "ord-1", T0, completed)
    entry = OutboxMessage.of(event)
    assert SECRET not in entry.value
    opened = json.loads(sealer.open_output(entry))
    assert opened["data"]["distributions"][0]["credentials"] == {
        "username": "ada",
        "password": SECRET,
    }
    assert "sealed_credentials" not in opened["data"]["distributions"][0]


def test_an_outbox_entry_says_whether_it_holds_sealed_credentials_and_older_ones_are_read() -> None:
    sealer = Sealer(Fernet.generate_key().decode())
    sealed = sealer.seal_distribution(
        Distribution(line_id="D1", credentials=Credentials(password=SECRET))
    )

    def completed(*distributions: Distribution) -> CloudEvent:
        data = FulfillmentCompleted(
            order_id="ord-1",
            order_number="#1",
            fulfillment_id="f1",
            lines=[],
            distributions=list(distributions) or None,
            order_status=OrderStatus.FULFILLED,
        )
        return CloudEvent("evt-1", EventType.FULFILLMENT_COMPLETED, "urn:t", "ord-1", T0, data)

    plain = OutboxMessage.of(completed(Distribution(line_id="D1", access_url="https://x.test")))
    assert plain.sealed is False
    assert sealer.open_output(plain) is plain.value  # sent as saved, never parsed
    entry = OutboxMessage.of(completed(sealed))
    assert entry.sealed is True
    # An entry saved before the flag existed is looked into, as before.
    legacy = entry.model_copy(update={"sealed": None})
    assert SECRET in sealer.open_output(legacy)
    assert SECRET in sealer.open_output(entry)


def test_the_first_of_several_keys_seals_and_any_of_them_opens() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = Sealer(old).seal_distribution(
        Distribution(line_id="D1", credentials=Credentials(password=SECRET))
    )
    rotated = Sealer(f"{new}, {old}")
    resealed = rotated.seal_distribution(
        Distribution(line_id="D1", credentials=Credentials(password=SECRET))
    )
    assert Sealer(new)._open(resealed).credentials == Credentials(password=SECRET)
    assert rotated._open(sealed).credentials == Credentials(password=SECRET)
    with pytest.raises(UnknownKey):
        Sealer(new)._open(sealed)


def test_malformed_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigError, match="must be Fernet keys"):
        Sealer("too-short")


def test_missing_key_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("FULFILLMENT_SECRET_KEY", raising=False)
    monkeypatch.setenv("FULFILLMENT_STACK_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="FULFILLMENT_SECRET_KEY is not set"):
        Sealer.from_env()


@pytest.mark.parametrize(
    ("kafka", "mongodb"),
    [
        ("kafka-1.prod.example:9092", "mongodb://127.0.0.1:27017"),
        ("127.0.0.1:9092", "mongodb://user:pw@db.prod.example:27017,127.0.0.1:27018/x"),
        ("localhost:9092,10.0.0.7:9092", "mongodb://localhost:27017"),
        ("127.0.0.1:9092", "mongodb+srv://cluster0.example.net"),
    ],
)
def test_the_local_stacks_key_never_serves_servers_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka: str, mongodb: str
) -> None:
    monkeypatch.delenv("FULFILLMENT_SECRET_KEY", raising=False)
    monkeypatch.setenv("FULFILLMENT_STACK_DIR", str(tmp_path))
    (tmp_path / "secret.key").write_text(Fernet.generate_key().decode())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka)
    monkeypatch.setenv("MONGODB_URI", mongodb)
    with pytest.raises(ConfigError, match="required when Kafka or the store is not on this"):
        Sealer.from_env()


@pytest.mark.parametrize(
    ("kafka", "mongodb"),
    [
        (None, None),
        ("127.0.0.1:19092,localhost:19094", "mongodb://127.0.0.1:17017"),
        ("[::1]:9092", "mongodb://localhost:27017/?directConnection=true"),
    ],
)
def test_the_local_stacks_key_serves_servers_on_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka: str | None, mongodb: str | None
) -> None:
    monkeypatch.delenv("FULFILLMENT_SECRET_KEY", raising=False)
    monkeypatch.setenv("FULFILLMENT_STACK_DIR", str(tmp_path))
    key = Fernet.generate_key().decode()
    (tmp_path / "secret.key").write_text(key)
    for name, value in (("KAFKA_BOOTSTRAP_SERVERS", kafka), ("MONGODB_URI", mongodb)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    sealed = Sealer.from_env().seal_distribution(
        Distribution(line_id="D1", credentials=Credentials(username="ada", password=SECRET))
    )
    assert sealed.sealed_credentials is not None
    assert SECRET in Fernet(key.encode()).decrypt(sealed.sealed_credentials.encode()).decode()
