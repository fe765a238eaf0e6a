"""An id is one path segment, whatever it holds: a `/` in it never reaches another page."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from console.paths import path_segment, segment_path
from schemas.names import EventType, OrderStatus
from tests.console.conftest import hidden
from tests.console.fakes import FakeBackend, order_with
from tests.factories import captured, placed, requested

# Ids that end in what a page's own path would: each names an order of its own.
ODD_IDS = [
    "ord-paid/cancel",
    "ord-paid/live",
    "ord-paid/state.json",
    "ord-paid/fulfill",
    "a%2Fb",
    "~x",
    # Segments a browser resolves before sending: ".." would lead to the orders' parent.
    "..",
    ".",
]


@pytest.fixture
def odd_orders(backend: FakeBackend) -> FakeBackend:
    for order_id in ODD_IDS:
        backend.orders.put(order_with([placed(order_id)], order_id))
    return backend


def test_the_router_sees_escaped_slashes_and_percents_still_escaped() -> None:
    assert segment_path(b"/orders/a%2fcancel/live") == "/orders/a%2Fcancel/live"
    assert segment_path(b"/orders/caf%C3%A9%20x%252F") == "/orders/café x%252F"


@pytest.mark.parametrize("order_id", ODD_IDS)
def test_an_order_whose_id_ends_in_a_page_name_opens_its_own_page(
    client: TestClient, odd_orders: FakeBackend, order_id: str
) -> None:
    page = client.get(f"/orders/{path_segment(order_id)}")
    assert page.status_code == 200
    assert order_id in page.text
    assert f'data-state="/orders/{path_segment(order_id)}/state.json"' in page.text
    state = client.get(f"/orders/{path_segment(order_id)}/state.json")
    assert state.status_code == 200


def test_cancelling_an_order_whose_id_ends_in_cancel_cancels_that_order_only(
    client: TestClient, odd_orders: FakeBackend
) -> None:
    action = f"/orders/{path_segment('ord-paid/cancel')}/cancel"
    page = client.get(action).text
    response = client.post(
        action,
        data={
            "csrf_token": hidden(page, "csrf_token", action),
            "nonce": hidden(page, "nonce", action),
        },
    )
    assert response.status_code == 303
    [sent] = odd_orders.published
    assert (sent.event_type, sent.order_id) == (EventType.ORDER_CANCEL_REQUESTED, "ord-paid/cancel")
    odd_orders.apply_published()
    assert odd_orders.orders.get("ord-paid").status is not OrderStatus.CANCELLED


@pytest.mark.parametrize("fulfillment_id", ["..", "."])
def test_a_fulfillment_whose_id_is_dots_links_to_its_own_pages_as_a_browser_resolves_them(
    client: TestClient, backend: FakeBackend, fulfillment_id: str
) -> None:
    events = [
        placed("ord-dots"),
        captured("ord-dots"),
        requested("ord-dots", fulfillment_id, shipment={"carrier": "DHL", "tracking_number": "A"}),
    ]
    backend.orders.put(order_with(events, "ord-dots"))
    page = client.get("/orders/ord-dots").text
    links = re.findall(r'href="(/orders/ord-dots/fulfillments/[^"]+)"', page)
    assert links
    for link in links:
        # What a browser requests: dot segments resolved, as urljoin does.
        resolved = urljoin("http://testserver/orders/ord-dots", link)
        assert resolved == f"http://testserver{link}", link
        shown = client.get(link)
        assert shown.status_code == 200 and "Cancel order" not in shown.text
