"""The console while the order store is away: a readable page, one log line, no traceback."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from console.queries import Page, Search
from tests.console.fakes import FakeBackend


async def store_away(search: Search) -> Page:
    raise ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused")


def test_a_page_the_store_cannot_serve_says_so_with_503_and_logs_one_line(
    client: TestClient,
    backend: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(backend.orders, "search", store_away)
    with caplog.at_level(logging.WARNING):
        response = client.get("/orders")
    assert response.status_code == 503
    assert "The order store is not answering" in response.text
    assert "Nothing was sent" in response.text
    ours = [r for r in caplog.records if r.name == "console"]
    assert [r.getMessage() for r in ours] == [
        "the order store did not answer (ServerSelectionTimeoutError)"
    ]
    assert all(r.exc_info is None for r in caplog.records)
