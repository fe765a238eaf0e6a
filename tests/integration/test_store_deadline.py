"""A store that takes connections and answers pings but no command is an outage, not a hang."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from consumers.metrics import RETRIES
from consumers.retry import retrying
from store import orders
from store.orders import OrderStore, connect
from tests.conftest import Infra
from tests.proxies import pipe

pytestmark = pytest.mark.integration

# What a driver sends to find and keep a server: answered. Any other command is swallowed.
HANDSHAKE = {
    b"hello",
    b"isMaster",
    b"ismaster",
    b"ping",
    b"buildInfo",
    b"buildinfo",
    b"endSessions",
}
OP_MSG = 2013


async def _forward_handshakes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while True:
            header = await reader.readexactly(16)
            length, _, _, opcode = struct.unpack("<iiii", header)
            body = await reader.readexactly(length - 16)
            # OP_MSG: flags (4), section kind (1), document length (4), first key's type (1).
            if opcode == OP_MSG and body[10:].split(b"\0", 1)[0] not in HANDSHAKE:
                continue
            writer.write(header + body)
            await writer.drain()


@pytest.fixture
async def silent_store(infra: Infra) -> AsyncIterator[str]:
    """A MongoDB URI whose server answers the handshake and pings, and nothing else."""
    address = urlsplit(infra.mongodb_uri)
    tasks: list[asyncio.Task[None]] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection(address.hostname, address.port)
        tasks.append(asyncio.create_task(pipe(upstream[0], writer)))
        tasks.append(asyncio.create_task(_forward_handshakes(reader, upstream[1])))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    server.close()
    for task in tasks:
        task.cancel()


async def test_a_store_that_answers_pings_but_no_command_is_waited_out_as_an_outage(
    silent_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orders, "COMMAND_DEADLINE_S", 0.5)
    client = connect(silent_store)
    store = OrderStore(client, "silent")
    before = RETRIES.labels("loading orders")._value.get()
    try:
        assert (await client.admin.command("ping"))["ok"]
        loading = asyncio.create_task(retrying("loading orders", store.load_many, ["ord-1"]))
        async with asyncio.timeout(20):
            while RETRIES.labels("loading orders")._value.get() < before + 2:
                await asyncio.sleep(0.1)
        assert not loading.done()  # still waiting the outage out, try after try
        loading.cancel()
    finally:
        await client.close()
