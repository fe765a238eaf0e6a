"""Every environment variable the project reads, typed and checked in one place (pydantic-settings)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, SecretStr, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pymongo.errors import ConfigurationError
from pymongo.uri_parser import parse_uri

DEFAULT_KAFKA_PORT = 9092
DEFAULT_MONGODB_PORT = 27017
DEFAULT_METRICS_PORT = 9400


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""


def range_problem(name: str, value: int, low: int, high: int | None = None) -> str | None:
    """Why `value` is out of low..high, in one line naming the variable; None when it is in."""
    if low <= value and (high is None or value <= high):
        return None
    allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
    return f"{name} must be {allowed}, got {value}"


def check_range(name: str, value: int, low: int, high: int | None = None) -> int:
    """`value` if low <= value <= high, else a one-line ConfigError naming the variable."""
    problem = range_problem(name, value, low, high)
    if problem:
        raise ConfigError(problem)
    return value


def _variable(info: ValidationInfo) -> str:
    return (info.field_name or "").upper()


def _port(value: int, info: ValidationInfo) -> int:
    """A TCP port: 1 to 65535, else the one-line message naming the variable."""
    problem = range_problem(_variable(info), value, 1, 65535)
    if problem:
        raise ValueError(problem)
    return value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _tracing_mode(value: Any) -> Any:
    # `none` and `off` both turned tracing off before the variable was typed.
    value = value.strip().lower() if isinstance(value, str) else value
    return "off" if value == "none" else value


def _port_or_off(value: Any, info: ValidationInfo) -> Any:
    # `off` (or 0) disables what listens there; anything else must be a plain port number.
    if not isinstance(value, str):
        return value
    raw = value.strip().lower()
    if raw in ("off", "0"):
        return None
    if not raw.isdigit():
        raise ValueError(f"{_variable(info)} must be a port number or off, not {raw!r}")
    return int(raw)


def _is_port(text: str) -> bool:
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    return text.isascii() and text.isdigit() and range_problem("", int(text), 1, 65535) is None


def _bootstrap_servers(value: str, info: ValidationInfo) -> str:
    """host[:port] entries, comma-separated, each port 1 to 65535: a typo is a configuration
    error at start, not an outage waited out forever."""
    for server in value.split(","):
        host, colon, port = server.strip().rpartition(":")
        if not colon:
            host, port = port, "9092"
        # A scheme ("http://h:9092") or a path is no part of a Kafka address.
        if not host or "/" in host or not _is_port(port):
            raise ValueError(
                f"{_variable(info)} must be host:port entries separated by commas, got {value!r}"
            )
    return value


def _mongodb_uri(value: str, info: ValidationInfo) -> str:
    """A MongoDB connection string (never echoed: it may hold a password)."""
    if not value.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError(f"{_variable(info)} must start with mongodb:// or mongodb+srv://")
    credentials, _, hosts = value.split("://", 1)[1].split("/", 1)[0].rpartition("@")
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":")
        if colon and not name.endswith("]") and not _is_port(port):
            raise ValueError(f"{_variable(info)} has a port that is not a number from 1 to 65535")
        if not host:
            raise ValueError(f"{_variable(info)} names no host")
    if value.startswith("mongodb://"):  # a mongodb+srv:// one would be looked up in DNS here
        _check_options(value, credentials, info)
    return value


def _check_options(uri: str, credentials: str, info: ValidationInfo) -> None:
    """Refuse an option pymongo would only warn about (a typo) or cannot read; pymongo's
    reason is given unless it quotes the `credentials`."""
    try:
        parse_uri(uri, warn=False)
    # OSError: a tlsCAFile or tlsCertificateKeyFile that is missing or a folder.
    except (ConfigurationError, ValueError, OSError) as problem:
        said = str(problem).split(". ")[0]
        detail = "" if credentials and credentials in said else f": {said}"
        raise ValueError(f"{_variable(info)} is not usable{detail}") from None


# Kafka's topic names: these characters, 249 at most. The prefix leaves room for the longest
# contract topic name (a test checks it).
TOPIC_PREFIX_MAX = 200
_TOPIC_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _topic_prefix(value: str, info: ValidationInfo) -> str:
    if len(value) > TOPIC_PREFIX_MAX or not set(value) <= _TOPIC_CHARACTERS:
        raise ValueError(
            f"{_variable(info)} must be at most {TOPIC_PREFIX_MAX} of a-z A-Z 0-9 . _ -"
            f" (Kafka's topic name characters), got {value!r}"
        )
    return value


# What MongoDB refuses in a database name.
_DATABASE_FORBIDDEN = '/\\. "$\x00'


def _database(value: str, info: ValidationInfo) -> str:
    if not value or len(value) > 63 or any(c in _DATABASE_FORBIDDEN for c in value):
        raise ValueError(
            f'{_variable(info)} must be 1 to 63 characters without / \\ . space " or $,'
            f" got {value!r}"
        )
    return value


Port = Annotated[int, AfterValidator(_port)]
LogLevel = Annotated[
    Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], BeforeValidator(_upper)
]


class Environment(BaseSettings):
    """The process environment: one field per variable, named after it in lower case.

    The README's "Configuration" table lists the same variables (a unit test compares them).
    """

    # An empty variable means unset, as the hand-written reads treated it.
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    # Where Kafka and the store are; unset means the local stack on its ports below.
    kafka_bootstrap_servers: Annotated[str, AfterValidator(_bootstrap_servers)] | None = None
    mongodb_uri: Annotated[str, AfterValidator(_mongodb_uri)] | None = None
    mongodb_database: Annotated[str, AfterValidator(_database)] = "fulfillment"
    # Fernet keys, comma-separated; unset means the key the local stack generated.
    fulfillment_secret_key: SecretStr | None = None
    fulfillment_topic_prefix: Annotated[str, AfterValidator(_topic_prefix)] = ""
    fulfillment_group_id: str = "fulfillment-worker"
    # Ranges are checked by config.Settings, which code can also build without the environment.
    fulfillment_partitions: int = 6
    # None (or 0): 3 on a cluster of three or more brokers, else as many as there are brokers.
    fulfillment_replication_factor: int | None = None
    fulfillment_batch_size: int = 500
    # Static group membership; `worker --processes N` sets the slot of each child.
    fulfillment_instance_id: str | None = None
    fulfillment_worker_slot: int | None = None
    fulfillment_metrics_port: Annotated[Port | None, BeforeValidator(_port_or_off)] = (
        DEFAULT_METRICS_PORT
    )
    fulfillment_log_level: LogLevel = "INFO"
    fulfillment_tracing: Annotated[
        Literal["otlp", "console", "off"], BeforeValidator(_tracing_mode)
    ] = "off"
    otel_service_name: str = "fulfillment-worker"
    # Checked, with their own messages, where the Kafka clients are configured (kafka_security).
    kafka_security_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    # The local stack.
    fulfillment_kafka_port: Port = DEFAULT_KAFKA_PORT
    # None: the Kafka port + 1.
    fulfillment_kafka_controller_port: Port | None = None
    fulfillment_mongodb_port: Port = DEFAULT_MONGODB_PORT
    fulfillment_stack_dir: Path | None = None
    fulfillment_cache_dir: Path | None = None
    xdg_cache_home: Path | None = None
    # The operator console's login; unset means a new random one per start.
    fulfillment_console_password: SecretStr | None = None
    fulfillment_debug: bool = False
    chaos_worker_log_level: LogLevel = "WARNING"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values given in code, then the process environment: no .env or secrets files."""
        return init_settings, env_settings

    @property
    def local_stack(self) -> bool:
        """True when neither Kafka nor the store is external: the local stack serves both."""
        return not (self.kafka_bootstrap_servers or self.mongodb_uri)

    @property
    def kafka_controller_port(self) -> int:
        """The local Kafka's controller port: as set, else right after the client port."""
        return self.fulfillment_kafka_controller_port or self.fulfillment_kafka_port + 1


def environment() -> Environment:
    """The environment as it is now, or a one-line ConfigError naming the first bad variable."""
    # Keyed by the current values of our variables, so never stale: tests and the demo change
    # the environment between reads, and nothing has to clear the cache.
    names = Environment.model_fields.keys()
    ours = tuple(sorted(i for i in os.environ.items() if i[0].lower() in names))
    for name, value in ours:
        if not is_text(value):
            raise ConfigError(f"{name} is not valid UTF-8")  # no client library could send it
    return _parsed(ours)


def is_text(value: str) -> bool:
    """Whether `value` is text: bytes that are not UTF-8 (in the environment or the command
    line) reach Python as surrogates."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=16)
def _parsed(variables: tuple[tuple[str, str], ...]) -> Environment:
    # `variables` is only the cache key: Environment() reads the same os.environ. Cached because
    # pydantic-settings inspects every field on each build (milliseconds), and the stack's
    # helpers ask for a path or a port many times per command.
    del variables
    try:
        return Environment()
    except ValidationError as problem:
        raise ConfigError(_one_line(problem.errors()[0])) from None


def _one_line(error: ErrorDetails) -> str:
    """pydantic's error as the project's message: the variable, what it must be, what it got."""
    variable = str(error["loc"][0]).upper() if error["loc"] else "the environment"
    given = error.get("input")
    kind = error["type"]
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error"))
    if kind == "int_parsing":
        return f"{variable} must be an integer, got {given!r}"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        return f"{variable} must be {expected}, not {given!r}"
    if kind == "bool_parsing":
        return f"{variable} must be true or false, not {given!r}"
    return f"{variable}: {error['msg']}, got {given!r}"
