"""What every command shares: consoles, one-line failures, and outages mapped to exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from aiokafka.errors import KafkaError
from pymongo.errors import ConnectionFailure
from rich.console import Console

from config import ConfigError

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

# Conventional exit codes (sysexits.h): 1 failure, 2 usage or configuration, 69 unavailable.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print one line on stderr and exit: operators get no tracebacks."""
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run an async command; configuration errors and outages become one-line failures."""
    try:
        return asyncio.run(coroutine)
    except ConfigError as problem:
        fail(str(problem), EXIT_USAGE)
    except ConnectionFailure as problem:
        fail(f"cannot reach the store: {str(problem).splitlines()[0][:200]}", EXIT_UNAVAILABLE)
    except KafkaError as problem:
        fail(f"cannot reach Kafka: {problem}", EXIT_UNAVAILABLE)
