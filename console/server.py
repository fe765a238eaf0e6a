"""`fulfillment console`: serve the console with uvicorn on loopback by default."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from config import Settings, is_loopback
from console.app import create_app
from console.backend import LiveBackend
from console.security import PASSWORD_VARIABLE, console_password


class ConsoleError(Exception):
    """The console cannot start; the message is one line for the operator."""


def check_port(host: str, port: int) -> None:
    """Fail with one line, before anything starts, when the address is empty, unusable or
    taken. An empty one would listen on every interface: a `--host "$HOST"` with HOST unset."""
    if not host.strip():
        raise ConsoleError("--host is empty; give an address (0.0.0.0 for every interface)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as problem:
            raise ConsoleError(f"cannot listen on {host}:{port}: {problem.strerror}") from None
        except (TypeError, UnicodeError):  # a name the resolver cannot encode
            raise ConsoleError(f"--host {host!r} is not an address or host name") from None


def login_lines(url: str, password: str, generated: bool) -> list[str]:
    """What to tell the operator: where the console is and how to log in."""
    how = (
        f"log in with this password (generated, shown only now): {password}"
        if generated
        else f"log in with the password in {PASSWORD_VARIABLE}"
    )
    return [f"console: {url}", f"console: {how}"]


class WithoutQuery(logging.Filter):
    """Access log lines keep the path and drop the query: searches name buyers and emails."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs (client, method, path with query, HTTP version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            if query:
                record.args = (args[0], args[1], f"{path}?(query not logged)", *args[3:])
        return True


def config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    # Access logs name method, path and status only; credentials travel in POST bodies.
    made = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=True, server_header=False
    )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, WithoutQuery) for f in access.filters):
        access.addFilter(WithoutQuery())
    return made


async def serve_async(
    settings: Settings, host: str, port: int, say: Callable[[str], None] = print
) -> None:
    """Run the console until interrupted."""
    check_port(host, port)
    password, generated = console_password()
    backend = LiveBackend(settings)
    app = create_app(backend, password)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    for line in login_lines(url, password, generated):
        say(line)
    if not is_loopback(host):
        say(
            f"console: warning: listening on {host}, beyond this machine, over plain HTTP; "
            "put it behind a TLS proxy"
        )
    try:
        await uvicorn.Server(config(app, host, port)).serve()
    finally:
        await backend.close()


def serve(host: str = "127.0.0.1", port: int = 8000, say: Callable[[str], None] = print) -> None:
    """Serve the console in the foreground with the environment's settings."""
    asyncio.run(serve_async(Settings.from_env(), host, port, say))
