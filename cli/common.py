"""What every command shares: consoles, one-line failures, and outages mapped to exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from dataclasses import replace
from typing import Any, NoReturn, TypeVar

import typer
from aiokafka import errors as kafka
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure
from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from config import ConfigError, Settings
from config.kafka_security import refusal
from consumers.startup import reason, store_refusal
from producers.publisher import FulfillmentPublisher

# Control characters but the newline and the tab: what could move the cursor, retitle the
# window or recolour the terminal if a value (a customer's name, a dead letter's key) held it.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Terminal(Console):
    """A console for values from outside: never read as markup (an id may well be "[/]"),
    and their control characters shown as U+FFFD, never sent to the terminal."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, highlight=False, **options)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # Segments marked `control` are rich's own cursor moves (live progress): kept.
        return super()._render_buffer(
            Segment(_CONTROL.sub("\ufffd", text), style, control)
            if not control and _CONTROL.search(text)
            else Segment(text, style, control)
            for text, style, control in buffer
        )


# Pages for people fit the terminal; a message a script reads (an event's id, say) is printed
# with soft_wrap=True, whole on one line.
console = Terminal()
# An error is one line, whatever the terminal's width.
errors = Terminal(stderr=True, soft_wrap=True)
T = TypeVar("T")


def error_line(message: str) -> Text:
    """`error: <message>`, the label in red."""
    return Text.assemble(("error:", "red"), " ", message)


# Conventional exit codes (sysexits.h): 1 failure, 2 usage or configuration, 69 unavailable.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
# A command waits this long for one Kafka answer, not aiokafka's 40 s: a hung broker fails fast.
CLI_KAFKA_TIMEOUT_MS = 4000
# Kafka errors that mean "cannot be reached", as opposed to a refused request.
KAFKA_UNREACHABLE: tuple[type[Exception], ...] = (
    kafka.KafkaConnectionError,
    kafka.KafkaTimeoutError,
    kafka.NoBrokersAvailable,
    kafka.NodeNotReadyError,
    kafka.RequestTimedOutError,
    kafka.KafkaUnavailableError,
)


# Kafka errors after which a record sent may or may not have been written: the broker did
# not answer in time.
UNACKNOWLEDGED: tuple[type[Exception], ...] = (kafka.KafkaTimeoutError, kafka.RequestTimedOutError)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one line on stderr and exit: operators get no tracebacks."""
    errors.print(error_line(message))
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
    with failing_in_one_line():
        return asyncio.run(coroutine)


@contextlib.contextmanager
def failing_in_one_line() -> Iterator[None]:
    """Configuration errors and outages inside become one-line failures with their exit code."""
    try:
        yield
    except ConfigError as problem:
        fail(str(problem), EXIT_USAGE)
    except ConnectionFailure as problem:
        fail(f"cannot reach the store: {reason(problem)}", EXIT_UNAVAILABLE)
    except ConfigurationError as problem:
        # A connection string pymongo cannot use (an SRV name without records, say).
        fail(f"MONGODB_URI is not usable: {reason(problem)}", EXIT_USAGE)
    except OperationFailure as problem:
        refused = store_refusal(problem)
        if refused is None:
            raise
        fail(refused, EXIT_USAGE)
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
