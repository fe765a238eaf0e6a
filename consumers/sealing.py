"""Delivery credentials encrypted at rest (Fernet), opened only to publish `fulfillment.completed`."""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from config import ConfigError, stack_dir
from schemas.events import Credentials, Distribution
from schemas.names import EventType

KEY_VARIABLE = "FULFILLMENT_SECRET_KEY"


def load_key() -> str:
    """The key from the environment, else the one the local stack generated for this checkout."""
    key = os.environ.get(KEY_VARIABLE)
    if key:
        return key
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

    def seal_distribution(self, distribution: Distribution) -> Distribution:
        """The distribution with its credentials replaced by their ciphertext."""
        if distribution.credentials is None:
            return distribution.model_copy(update={"sealed_credentials": None})
        plain = distribution.credentials.model_dump_json(exclude_none=True).encode()
        return distribution.model_copy(
            update={"credentials": None, "sealed_credentials": self._fernet.encrypt(plain).decode()}
        )

    def open_output(self, value: str) -> str:
        """The wire form of an outbox value: credentials opened in `fulfillment.completed` only."""
        if '"sealed_credentials":"' not in value:
            return value
        event = json.loads(value)
        distributions = event.get("data", {}).get("distributions")
        if event.get("type") != EventType.FULFILLMENT_COMPLETED or not distributions:
            return value
        event["data"]["distributions"] = [self._open(dict(item)) for item in distributions]
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False)

    def _open(self, distribution: dict[str, Any]) -> dict[str, Any]:
        sealed = distribution.pop("sealed_credentials", None)
        if sealed:
            try:
                plain = self._fernet.decrypt(sealed.encode())
            except InvalidToken:
                raise UnknownKey("stored credentials were sealed with a key this worker lacks") from None
            distribution["credentials"] = Credentials.model_validate(json.loads(plain)).model_dump(
                exclude_none=True
            )
        return {key: item for key, item in distribution.items() if item is not None}
