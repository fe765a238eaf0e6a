"""`order show --json` and `orders search --json` show sealed credentials only as present."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.fernet import Fernet

from cli.orders import SEALED, redacted
from consumers.sealing import Sealer
from lifecycle import apply
from schemas.document import OrderDocument, OutboxMessage
from tests.factories import captured, line, placed, requested

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "pw-never-shown"


def test_neither_the_fulfillment_nor_its_unsent_completed_event_shows_the_sealed_credentials() -> (
    None
):
    sealer = Sealer(Fernet.generate_key().decode())
    order = OrderDocument(_id="ord-d")
    apply(order, placed("ord-d", lines=[line("D1", 1, "digital", "10.00")]), NOW)
    apply(order, captured("ord-d", "10.00"), NOW)
    request = requested(
        "ord-d", distributions=[{"line_id": "D1", "credentials": {"password": SECRET}}]
    )
    outputs = apply(order, sealer.seal(request), NOW).outputs
    order.outbox = [OutboxMessage.of(event) for event in outputs]
    distribution = order.fulfillments[0].distributions[0]  # type: ignore[index]
    token = distribution.sealed_credentials
    assert token and any(token in entry.value for entry in order.outbox)

    shown = json.dumps(redacted(order))
    assert token not in shown and SECRET not in shown
    assert shown.count(SEALED) == 2  # the fulfillment's distribution and the outbox's event
