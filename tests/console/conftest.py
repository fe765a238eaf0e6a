"""The console app on a fake backend, and a test client logged in or not."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import console.app
from console.app import create_app
from tests.console.fakes import FakeBackend, order_with
from tests.factories import captured, placed, requested

PASSWORD = "correct horse battery staple"


def hidden(html: str, name: str, action: str | None = None) -> str:
    """The value of hidden field `name` in the form posting to `action` (else the first one)."""
    if action is not None:
        form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
        assert form, f"no form posting to {action} in the page"
        html = form.group(0)
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found and found.group(1), f"no {name} field with a value in the page"
    return found.group(1)


@pytest.fixture(autouse=True)
def no_login_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console.app, "FAILED_LOGIN_DELAY_S", 0.0)


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    # A paid physical order, an unpaid one, and one fulfilled through a shipment.
    fake.orders.put(order_with([placed("ord-paid"), captured("ord-paid")], "ord-paid"))
    fake.orders.put(order_with([placed("ord-unpaid")], "ord-unpaid"))
    shipped = [
        placed("ord-shipped"),
        captured("ord-shipped"),
        requested("ord-shipped", "ful-1", shipment={"carrier": "DHL", "tracking_number": "AWB1"}),
    ]
    fake.orders.put(order_with(shipped, "ord-shipped"))
    return fake


@pytest.fixture
def app(backend: FakeBackend) -> FastAPI:
    return create_app(backend, PASSWORD)


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


def log_in(client: TestClient, password: str = PASSWORD) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "csrf_token": hidden(page.text, "csrf_token", "/login"),
            "password": password,
            "next": "/orders",
        },
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as logged_in:
        log_in(logged_in)
        yield logged_in
