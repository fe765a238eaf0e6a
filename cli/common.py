"""What every command shares: consoles, one-line failures, and outages mapped to exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from typing import Any, NoReturn, TypeVar

import typer
from aiokafka import errors as kafka
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure
from rich.console import Console

from config import ConfigError, Settings
from config.kafka_security import refusal
from consumers.startup import reason
from producers.publisher import FulfillmentPublisher

# Pages for people fit the terminal; a message a script reads (an event's id, say) is printed
# with soft_wrap=True, whole on one line.
console = Console()
# An error is one line, whatever the terminal's width.
errors = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

# Conventional exit codes (sysexits.h): 1 failure, 2 usage or configuration, 69 unavailable.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
# A command waits this long for one Kafka answer, not aiokafka's 40 s: a hung broker fails fast.
CLI_KAFKA_TIMEOUT_MS = 4000
# MongoDB's code for a login it refused (wrong user, password or mechanism).
AUTHENTICATION_FAILED = 18
# Kafka errors that mean "cannot be reached", as opposed to a refused request.
KAFKA_UNREACHABLE: tuple[type[Exception], ...] = (
    kafka.KafkaConnectionError,
    kafka.KafkaTimeoutError,
    kafka.NoBrokersAvailable,
    kafka.NodeNotReadyError,
    kafka.RequestTimedOutError,
    kafka.KafkaUnavailableError,
)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one line on stderr and exit: operators get no tracebacks."""
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def quiet_client_logs() -> None:
    """Commands report failures themselves: the Kafka client's own lines would only repeat them."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL + 1)


def cli_settings() -> Settings:
    """Settings from the environment, with the short Kafka timeout of an interactive command."""
    return replace(Settings.from_env(), kafka_request_timeout_ms=CLI_KAFKA_TIMEOUT_MS)


def _kafka_address() -> str:
    try:
        return Settings.from_env().kafka_bootstrap
    except ConfigError:
        return "KAFKA_BOOTSTRAP_SERVERS"


def _kafka_refusal() -> str | None:
    """Why Kafka refuses us (certificate, password), or None for a broker that is just down."""
    try:
        settings = Settings.from_env()
    except ConfigError:
        return None
    return asyncio.run(refusal(settings.kafka_bootstrap, settings.kafka_security))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an async command; configuration errors and outages become one-line failures."""
    try:
        return asyncio.run(coroutine)
    except ConfigError as problem:
        fail(str(problem), EXIT_USAGE)
    except ConnectionFailure as problem:
        fail(f"cannot reach the store: {reason(problem)}", EXIT_UNAVAILABLE)
    except ConfigurationError as problem:
        # A connection string pymongo cannot use (an SRV name without records, say).
        fail(f"MONGODB_URI is not usable: {reason(problem)}", EXIT_USAGE)
    except OperationFailure as problem:
        if problem.code != AUTHENTICATION_FAILED:
            raise
        fail(f"the store refused the credentials in MONGODB_URI: {reason(problem)}", EXIT_USAGE)
    except KAFKA_UNREACHABLE as problem:
        fail(
            _kafka_refusal() or f"cannot reach Kafka at {_kafka_address()}: {reason(problem)}",
            EXIT_UNAVAILABLE,
        )
    except kafka.KafkaError as problem:
        fail(f"Kafka refused: {reason(problem)}")
    except (TimeoutError, ConnectionError) as problem:
        fail(f"cannot reach Kafka or the store: {reason(problem)}", EXIT_UNAVAILABLE)


@contextlib.asynccontextmanager
async def open_publisher(settings: Settings) -> AsyncIterator[FulfillmentPublisher]:
    """A started publisher, closed even when starting it fails (no "Unclosed" warning then)."""
    publisher = FulfillmentPublisher(settings)
    try:
        await publisher.__aenter__()
    except BaseException:
        await publisher.__aexit__(None, None, None)
        raise
    try:
        yield publisher
    finally:
        await publisher.__aexit__(None, None, None)
