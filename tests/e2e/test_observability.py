"""Metrics, health and readiness, structured logs and tracing of a real worker process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.names import EventType, OrderStatus, Topic
from tests.conftest import Infra, Names
from tests.e2e.harness import Harness
from tests.factories import envelope, placed_data
from tests.proxies import free_port

pytestmark = pytest.mark.e2e


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    status = int(response.split()[1])
    return status, response.split("\r\n\r\n", 1)[1]


@pytest.fixture
async def observed(
    infra: Infra, names: Names, tmp_path: Path
) -> AsyncIterator[tuple[Harness, int]]:
    port = free_port()
    pipeline = Harness(infra, names, tmp_path)
    await pipeline.start(
        FULFILLMENT_METRICS_PORT=str(port),
        FULFILLMENT_LOG_LEVEL="DEBUG",
        FULFILLMENT_TRACING="console",
    )
    try:
        yield pipeline, port
    finally:
        await pipeline.stop()


async def test_worker_exposes_metrics_health_readiness_logs_and_traces(
    observed: tuple[Harness, int],
) -> None:
    harness, port = observed
    async with asyncio.timeout(30):
        while True:
            try:
                if (await http_get(port, "/readyz"))[0] == 200:
                    break
            except OSError:
                pass
            await asyncio.sleep(0.2)
    assert await http_get(port, "/healthz") == (200, "ok\n")

    await harness.send(
        Topic.ORDERS_PLACED,
        envelope(EventType.ORDER_PLACED, "ord-obs", placed_data(), event_id="evt-obs-1"),
    )
    await harness.send_raw(Topic.ORDERS_PLACED, b"ord-obs", b"not json")
    await harness.settled("ord-obs", lambda o: o.status is OrderStatus.AWAITING_PAYMENT)
    await harness.until(lambda: len(harness.seen("orders.placed.dlq")) >= 1)

    samples = (
        'fulfillment_messages_total{outcome="accepted",topic="orders.placed"} 1.0',
        'fulfillment_messages_total{outcome="dead_letter",topic="orders.placed"} 1.0',
        'fulfillment_dead_letters_total{reason="not_json",topic="orders.placed"} 1.0',
        'fulfillment_events_total{outcome="applied",type="order.placed"} 1.0',
        'fulfillment_outputs_published_total{topic="orders.status-changed"} 1.0',
        "fulfillment_batch_seconds_count",
        "fulfillment_outbox_backlog_orders",
    )
    # The outputs' count moves once the broker acked them, a moment after the order is saved.
    for _ in range(150):
        status, body = await http_get(port, "/metrics")
        assert status == 200
        if all(sample in body for sample in samples):
            break
        await asyncio.sleep(0.2)
    for sample in samples:
        assert sample in body, sample
    # Named like the other metrics' topics (without the prefix), for dashboards to join them.
    lags = [line for line in body.splitlines() if line.startswith("fulfillment_consumer_lag{")]
    assert any('topic="orders.placed"' in line for line in lags), lags

    await asyncio.sleep(1)  # the console exporter flushes spans in the background
    lines = [
        json.loads(line)
        for line in harness.logs().splitlines()
        if line.startswith("{") and '"level"' in line
    ]
    assert any(
        line.get("order_id") == "ord-obs" and line.get("event_id") == "evt-obs-1" for line in lines
    )
    assert any(line.get("reason") == "not_json" and "offset" in line for line in lines)
    assert '"trace_id"' in harness.logs() and "orders.placed" in harness.logs()
