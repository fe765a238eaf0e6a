"""`publish` tells an unacknowledged send from an unreachable broker: the event may be there."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer
from aiokafka.errors import KafkaTimeoutError, RequestTimedOutError

from cli import messages
from cli.common import EXIT_UNAVAILABLE
from schemas.names import EventType
from tests.factories import placed_data


@pytest.mark.parametrize("timeout", [KafkaTimeoutError, RequestTimedOutError])
def test_an_unacknowledged_publish_names_the_event_and_says_it_may_still_arrive(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    timeout: type[Exception],
) -> None:
    class Unacknowledged:
        async def send_raw(self, *args: Any) -> None:
            raise timeout()

    @contextlib.asynccontextmanager
    async def publisher(settings: Any) -> AsyncIterator[Unacknowledged]:
        yield Unacknowledged()

    monkeypatch.setattr(messages, "open_publisher", publisher)
    data = tmp_path / "order.json"
    data.write_text(json.dumps(placed_data()))
    with pytest.raises(typer.Exit) as exited:
        messages.publish(EventType.ORDER_PLACED, str(data), "ord-1", False)
    assert exited.value.exit_code == EXIT_UNAVAILABLE
    said = capsys.readouterr().err
    assert "may still arrive" in said and "evt-" in said and "ord-1" in said
    assert "cannot reach" not in said and len(said.strip().splitlines()) == 1
