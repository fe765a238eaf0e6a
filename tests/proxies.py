"""A TCP proxy for tests: a server that comes up on a new address, or is seen through a filter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from stack.processes import free_port_run


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range: the tests open a proxy on it
    seconds later, and an outgoing connection could take an ephemeral one meanwhile."""
    return free_port_run(1, start=26000)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy what `reader` receives to `writer` until either side closes."""
    with contextlib.suppress(Exception):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def tcp_proxy(port: int, target: str) -> AsyncIterator[None]:
    """Forward 127.0.0.1:`port` to `target` (host:port, the first of a list) while open."""
    host, target_port = target.split(",")[0].rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
