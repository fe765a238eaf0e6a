"""The console while the order store is away: a readable page, one log line, no traceback."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from fastapi.testclient import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from config import Settings
from console.backend import LiveBackend, Unavailable
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


async def test_the_dead_letter_page_gives_up_on_a_hung_broker_within_seconds() -> None:
    # A broker that accepts connections and never answers: each request waits 8 s, not 40.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        settings = Settings(f"127.0.0.1:{hung.getsockname()[1]}", "mongodb://127.0.0.1:9")
        backend = LiveBackend(settings)
        started = time.monotonic()
        try:
            with pytest.raises(Unavailable, match="cannot reach Kafka"):
                await backend.dead_letter_counts()
        finally:
            await backend.close()
    assert time.monotonic() - started < 20
