"""For the browser tests: the console served by uvicorn on a free loopback port, Debian's
Chromium through Playwright, and the seeds' orders sent to a real worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from config import Settings, project_root
from console.app import create_app
from console.backend import LiveBackend
from schemas.names import EventType, OrderStatus, Topic
from tests.e2e.harness import Harness
from tests.factories import envelope

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-test-password"
# Set CONSOLE_SCREENSHOTS=1 to refresh the pictures in docs/console (the README shows them).
SCREENSHOTS = project_root() / "docs" / "console"


def require_chromium() -> None:
    """Fail where Chromium is missing: a skipped browser test would pass unseen."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)")


def screenshot_dir(fallback: Path) -> Path:
    return SCREENSHOTS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else fallback


@dataclass
class Served:
    """A console serving the harness's pipeline."""

    url: str
    backend: LiveBackend


@contextlib.asynccontextmanager
async def serve_console(settings: Settings) -> AsyncIterator[Served]:
    """Run the console in this event loop on a socket bound before it starts (no port race)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    backend = LiveBackend(settings)
    app = create_app(backend, PASSWORD)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", backend)
    finally:
        server.should_exit = True
        await task
        await backend.close()
        listener.close()


# ---- the seeds' orders ---------------------------------------------------------------------


def address(name: str, line1: str, city: str, postal_code: str, country: str) -> dict[str, str]:
    return {
        "name": name,
        "line1": line1,
        "city": city,
        "postal_code": postal_code,
        "country": country,
    }


def order_line(
    line_id: str, title: str, quantity: int, price: str, delivery: str = "shipment"
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": f"SKU-{line_id}",
        "title": title,
        "quantity": quantity,
        "unit_price": price,
        "delivery": delivery,
    }


def placed_event(
    order_id: str,
    number: str,
    customer: tuple[str, str],
    lines: list[dict[str, Any]],
    shipping: dict[str, str] | None = None,
    billing: dict[str, str] | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    """`order.placed` of a realistic order; the total is the sum of its lines."""
    total = sum(int(line["quantity"]) * float(line["unit_price"]) for line in lines)
    name, email = customer
    data: dict[str, Any] = {
        "order_number": number,
        "customer": {"name": name, "email": email} | ({"phone": phone} if phone else {}),
        "currency": "EUR",
        "total": f"{total:.2f}",
        "lines": lines,
    }
    if shipping:
        data["shipping_address"] = shipping
    if billing:
        data["billing_address"] = billing
    return envelope(EventType.ORDER_PLACED, order_id, data)


def payment_event(order_id: str, amount: str, payment_id: str = "pay-checkout") -> dict[str, Any]:
    data = {"payment_id": payment_id, "amount": amount, "currency": "EUR", "method": "card"}
    return envelope(EventType.PAYMENT_CAPTURED, order_id, data)


async def place(harness: Harness, event: dict[str, Any], paid: bool = False) -> str:
    """Send an order (and its payment) and wait until the worker has applied it."""
    order_id = str(event["subject"])
    await harness.send(Topic.ORDERS_PLACED, event)
    if paid:
        await harness.send(Topic.PAYMENTS_CAPTURED, payment_event(order_id, event["data"]["total"]))
    wanted = OrderStatus.UNFULFILLED if paid else OrderStatus.AWAITING_PAYMENT
    # A minute: the first order also waits for the worker to join its group.
    await harness.settled(order_id, lambda order: order.status is wanted, timeout=60)
    return order_id
