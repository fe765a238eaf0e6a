"""Delivery credentials encrypted at rest (Fernet), opened only to publish `fulfillment.completed`."""

from __future__ import annotations

from dataclasses import replace

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from config import ConfigError, Settings, environment, stack_dir
from schemas.cloudevents import from_json, to_json
from schemas.document import OutboxMessage
from schemas.events import (
    Credentials,
    Distribution,
    FulfillmentCompleted,
    FulfillmentRequested,
    Inbound,
)
from schemas.names import Topic

COMPLETED_TOPIC = Topic.FULFILLMENTS_COMPLETED.value

KEY_VARIABLE = "FULFILLMENT_SECRET_KEY"


def load_key() -> str:
    """The key from the environment, else the one the local stack generated for this checkout,
    which serves only servers on this machine: elsewhere credentials sealed with a checkout's
    key would be readable by anyone with the checkout, and unreadable by the other workers."""
    key = environment().fulfillment_secret_key
    if key:
        return key.get_secret_value()
    if not Settings.from_env().on_this_machine():
        raise ConfigError(
            f"{KEY_VARIABLE} is not set: it is required when Kafka or the store is not on this"
            " machine; set it to the Fernet key your other workers use"
        )
    local = stack_dir() / "secret.key"
    if local.exists():
        return local.read_text().strip()
    raise ConfigError(
        f"{KEY_VARIABLE} is not set: set it to a Fernet key, or run `fulfillment stack up` to make a local one"
    )


class UnknownKey(Exception):
    """Stored credentials were sealed with a key this worker does not have."""


class Sealer:
    """Seals credentials before they are stored; unseals them only for the completed event.

    `key` may list several comma-separated keys for rotation: the first seals, any opens.
    """

    def __init__(self, key: str) -> None:
        keys = [part.strip() for part in key.split(",") if part.strip()]
        if not keys:
            raise ConfigError(f"{KEY_VARIABLE} is empty")
        try:
            self._fernet = MultiFernet([Fernet(part.encode()) for part in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                f"{KEY_VARIABLE} must be Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from None

    @classmethod
    def from_env(cls) -> Sealer:
        return cls(load_key())

    def seal(self, event: Inbound) -> Inbound:
        """The event with every distribution's credentials sealed (others pass unchanged)."""
        data = event.data
        if not isinstance(data, FulfillmentRequested) or not data.distributions:
            return event
        sealed = [self.seal_distribution(d) for d in data.distributions]
        return replace(event, data=data.model_copy(update={"distributions": sealed}))

    def seal_distribution(self, distribution: Distribution) -> Distribution:
        """The distribution with its credentials replaced by their ciphertext."""
        if distribution.credentials is None:
            return distribution.model_copy(update={"sealed_credentials": None})
        plain = distribution.credentials.model_dump_json(exclude_none=True).encode()
        return distribution.model_copy(
            update={"credentials": None, "sealed_credentials": self._fernet.encrypt(plain).decode()}
        )

    def open_output(self, entry: OutboxMessage) -> str:
        """The wire form of an outbox entry: credentials opened in `fulfillment.completed` only."""
        if entry.topic != COMPLETED_TOPIC or entry.sealed is False:
            return entry.value
        event = from_json(entry.value)
        data = event.data
        assert isinstance(data, FulfillmentCompleted)
        if not any(d.sealed_credentials for d in data.distributions or ()):
            return entry.value
        opened = [self._open(d) for d in data.distributions or ()]
        return to_json(replace(event, data=data.model_copy(update={"distributions": opened})))

    def _open(self, distribution: Distribution) -> Distribution:
        if not distribution.sealed_credentials:
            return distribution
        try:
            plain = self._fernet.decrypt(distribution.sealed_credentials.encode())
        except InvalidToken:
            raise UnknownKey(
                "stored credentials were sealed with a key this worker lacks"
            ) from None
        credentials = Credentials.model_validate_json(plain)
        return distribution.model_copy(
            update={"credentials": credentials, "sealed_credentials": None}
        )
