"""Security settings that do not match the broker's listener are a refusal, said in one line,
never an outage waited out for ever (a plaintext listener here)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from config.kafka_security import refusal
from tests.conftest import Infra

pytestmark = pytest.mark.integration
LOGIN = {"sasl_username": "someone", "sasl_password": "whatever"}


async def test_a_sasl_login_on_a_plaintext_listener_is_refused_naming_the_protocol(
    infra: Infra,
) -> None:
    said = await refusal(infra.kafka_bootstrap, {"security_protocol": "SASL_PLAINTEXT", **LOGIN})
    assert said is not None and "takes no SASL login on this listener" in said
    assert "SASL_PLAINTEXT" in said and "whatever" not in said


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
async def test_tls_to_a_plaintext_listener_is_refused_naming_the_protocol(
    infra: Infra, protocol: str
) -> None:
    said = await refusal(infra.kafka_bootstrap, {"security_protocol": protocol, **LOGIN})
    assert said is not None and "closed the connection at the TLS handshake" in said
    assert protocol in said


async def test_a_closed_port_is_no_refusal_but_an_outage() -> None:
    options = {"security_protocol": "SASL_PLAINTEXT", **LOGIN}
    assert await refusal("127.0.0.1:1", options) is None


async def test_a_port_that_resets_every_connection_is_an_outage_not_a_refusal() -> None:
    # A broker going down, or a balancer with no broker behind it, resets connections too.
    def reset(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        said = await refusal(f"127.0.0.1:{port}", {"security_protocol": "SSL"}, timeout_ms=2000)
    finally:
        server.close()
        await server.wait_closed()
    assert said is None
