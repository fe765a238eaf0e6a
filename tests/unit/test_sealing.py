"""Credentials are sealed at rest and opened only in `fulfillment.completed`."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from config import ConfigError
from consumers.sealing import Sealer
from schemas.events import Credentials, Distribution

SECRET = "s3cr3t-pass"


def test_sealed_distribution_holds_no_plain_credentials_and_opens_in_completed_events() -> None:
    sealer = Sealer(Fernet.generate_key().decode())
    sealed = sealer.seal_distribution(
        Distribution(line_id="D1", credentials=Credentials(username="ada", password=SECRET))
    )
    assert sealed.credentials is None
    assert sealed.sealed_credentials and SECRET not in sealed.sealed_credentials
    event = {
        "type": "fulfillment.completed",
        "data": {"distributions": [sealed.model_dump(mode="json")]},
    }
    value = json.dumps(event, separators=(",", ":"))
    assert SECRET not in value
    opened = json.loads(sealer.open_output(value))
    assert opened["data"]["distributions"][0]["credentials"] == {
        "username": "ada",
        "password": SECRET,
    }
    assert "sealed_credentials" not in opened["data"]["distributions"][0]


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
