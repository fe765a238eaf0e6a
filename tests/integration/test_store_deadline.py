"""A store that takes connections and answers pings but no command is an outage, not a hang."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from pymongo.errors import PyMongoError

from config import Settings
from consumers.metrics import RETRIES
from consumers.retry import is_outage, retrying
from consumers.startup import store_unreachable
from store import orders, server
from store.orders import OrderStore, connect
from store.server import probe
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


# What a driver needs to find and keep a server, and nothing it asks of one.
DISCOVERY = {b"hello", b"isMaster", b"ismaster", b"endSessions"}


async def _forward_handshakes(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answered: frozenset[bytes] | set[bytes] = HANDSHAKE,
) -> None:
    with contextlib.suppress(Exception):
        while True:
            header = await reader.readexactly(16)
            length, _, _, opcode = struct.unpack("<iiii", header)
            body = await reader.readexactly(length - 16)
            # OP_MSG: flags (4), section kind (1), document length (4), first key's type (1).
            if opcode == OP_MSG and body[10:].split(b"\0", 1)[0] not in answered:
                continue
            writer.write(header + body)
            await writer.drain()


@contextlib.asynccontextmanager
async def answering(infra: Infra, answered: set[bytes]) -> AsyncIterator[str]:
    """A MongoDB URI whose server answers the `answered` commands, and nothing else."""
    address = urlsplit(infra.mongodb_uri)
    tasks: list[asyncio.Task[None]] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection(address.hostname, address.port)
        tasks.append(asyncio.create_task(pipe(upstream[0], writer)))
        tasks.append(asyncio.create_task(_forward_handshakes(reader, upstream[1], answered)))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        server.close()
        for task in tasks:
            task.cancel()


@pytest.fixture
async def silent_store(infra: Infra) -> AsyncIterator[str]:
    """A MongoDB URI whose server answers the handshake and pings, and nothing else."""
    async with answering(infra, HANDSHAKE) as uri:
        yield uri


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


async def test_a_store_that_answers_no_question_at_start_up_is_an_outage_within_seconds(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's start-up asks `ping` (is it there?) and `buildInfo` (what is it?): a
    # server that takes connections and answers neither would hold start-up for ever.
    monkeypatch.setattr(server, "PROBE_DEADLINE_S", 1.0)
    async with answering(infra, DISCOVERY) as uri:
        settings = Settings(mongodb_uri=uri)
        async with asyncio.timeout(15):
            why = await store_unreachable(settings)
            assert why is not None
            client = connect(uri)
            try:
                with pytest.raises(PyMongoError) as probing:
                    await probe(client)
                assert is_outage(probing.value)
            finally:
                await client.close()
