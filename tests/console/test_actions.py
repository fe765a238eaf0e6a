"""Every console action is one contract input event, built from a validated form; the pages
show the pipeline's answer. The worker is played by the fake backend."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

import console.app
from console.app import create_app
from console.backend import Unavailable
from console.forms import event_id, fulfillment_id
from console.queries import Search, search_filter
from producers.publisher import EventTooLarge
from schemas.events import (
    FulfillmentCancelRequested,
    FulfillmentRequested,
    FulfillmentTrackingUpdated,
    OrderCancelRequested,
    PaymentCaptured,
    ShipmentStatusReported,
)
from schemas.limits import MAX_ITEMS
from schemas.names import EventType, OrderStatus, Topic
from tests.console.conftest import PASSWORD, hidden
from tests.console.fakes import FakeBackend, letter, order_with
from tests.factories import ADDRESS, captured, line, placed


def _form(client: TestClient, page_path: str, action: str) -> dict[str, str]:
    """The hidden fields (CSRF token, nonce) of the form for `action` on the page."""
    page = client.get(page_path).text
    return {
        "csrf_token": hidden(page, "csrf_token", action),
        "nonce": hidden(page, "nonce", action),
    }


def _post_form(client: TestClient, page_path: str, action: str, **fields: str) -> tuple[str, Any]:
    data = _form(client, page_path, action) | fields
    response = client.post(action, data=data)
    return data["nonce"], response


def test_capture_publishes_payment_captured_for_the_outstanding_amount(
    client: TestClient, backend: FakeBackend
) -> None:
    nonce, response = _post_form(client, "/orders/ord-unpaid", "/orders/ord-unpaid/capture")
    assert response.status_code == 303
    [sent] = backend.published
    assert sent.event_type is EventType.PAYMENT_CAPTURED
    assert isinstance(sent.data, PaymentCaptured)
    assert (sent.data.amount, sent.data.currency) == ("20.00", "USD")
    assert sent.event_id == event_id(nonce, "capture", "ord-unpaid")


def test_a_form_sent_twice_publishes_one_event(client: TestClient, backend: FakeBackend) -> None:
    action = "/orders/ord-unpaid/capture"
    data = _form(client, "/orders/ord-unpaid", action)
    for _ in range(3):
        assert client.post("/orders/ord-unpaid/capture", data=data).status_code == 303
    assert len(backend.published) == 1
    assert "already sent" in client.get("/orders/ord-unpaid").text


class Slow(FakeBackend):
    """A broker that takes a while to answer each send, then refuses it or takes it."""

    def __init__(self, refuses: bool) -> None:
        super().__init__()
        self.refuses = refuses
        self.attempts = 0

    async def publish(self, *args: Any) -> None:
        self.attempts += 1
        await asyncio.sleep(0.3)
        if self.refuses:
            raise Unavailable("Kafka is unreachable")
        await super().publish(*args)


@pytest.mark.parametrize("refuses", [True, False], ids=["refused", "sent"])
async def test_a_form_sent_again_while_its_first_send_is_under_way_says_what_became_of_it(
    backend: FakeBackend, refuses: bool
) -> None:
    # A browser or proxy retrying the POST: the page it shows is the second answer's.
    slow = Slow(refuses)
    slow.orders = backend.orders
    transport = httpx2.ASGITransport(app=create_app(slow, PASSWORD))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        page = await browser.get("/login")
        token = hidden(page.text, "csrf_token", "/login")
        await browser.post("/login", data={"csrf_token": token, "password": PASSWORD})
        action = "/orders/ord-unpaid/capture"
        page = await browser.get("/orders/ord-unpaid")
        data = {"csrf_token": hidden(page.text, "csrf_token", action)}
        data["nonce"] = hidden(page.text, "nonce", action)
        first, second = await asyncio.gather(
            browser.post(action, data=data), browser.post(action, data=data)
        )
        shown = (await browser.get("/orders/ord-unpaid")).text
    assert first.status_code == second.status_code == 303
    assert slow.attempts == 1  # the second waited for the first, and did not send
    if refuses:
        assert shown.count("was not sent: Kafka is unreachable") == 2
        assert "already sent" not in shown
    else:
        assert len(slow.published) == 1
        assert "already sent" in shown


async def test_a_send_forgotten_while_under_way_still_tells_those_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console.app, "MAX_SUBMISSIONS", 1)
    submissions = console.app.Submissions()
    first, _ = submissions.start("a" * 32)
    repeat, new = submissions.start("a" * 32)
    assert repeat is first and not new
    waiting = asyncio.create_task(console.app.outcome_of(repeat))
    submissions.start("b" * 32)  # the first is forgotten: only one is kept
    submissions.finish("a" * 32, first, "it was not sent")
    assert await asyncio.wait_for(waiting, 1) == "it was not sent"


def test_two_capture_forms_of_the_same_state_capture_once(
    client: TestClient, backend: FakeBackend
) -> None:
    _post_form(client, "/orders/ord-unpaid", "/orders/ord-unpaid/capture")
    _post_form(client, "/orders/ord-unpaid", "/orders/ord-unpaid/capture")
    first, second = (sent.data for sent in backend.published)
    assert isinstance(first, PaymentCaptured) and isinstance(second, PaymentCaptured)
    # Two events, one payment id: the pipeline counts a repeated payment id once.
    assert first.payment_id == second.payment_id
    backend.apply_published()
    assert backend.orders.get("ord-unpaid").captured_amount == "20.00"


def test_event_ids_follow_the_nonce_and_the_action() -> None:
    assert event_id("a" * 32, "capture", "o1") == event_id("a" * 32, "capture", "o1")
    assert event_id("a" * 32, "capture", "o1") != event_id("b" * 32, "capture", "o1")
    assert event_id("a" * 32, "capture", "o1") != event_id("a" * 32, "cancel-order", "o1")
    assert fulfillment_id("a" * 32, "o1") == fulfillment_id("a" * 32, "o1")


def test_a_form_without_its_nonce_is_refused(client: TestClient, backend: FakeBackend) -> None:
    page = client.get("/orders/ord-unpaid").text
    action = "/orders/ord-unpaid/capture"
    response = client.post(action, data={"csrf_token": hidden(page, "csrf_token", action)})
    assert response.status_code == 400
    assert backend.published == []


def test_fulfill_form_is_prefilled_with_what_is_unfulfilled(client: TestClient) -> None:
    page = client.get("/orders/ord-paid/fulfill").text
    assert 'name="qty-0" id="qty-0" value="2"' in page
    assert 'value="Ada Buyer"' in page and 'value="Springfield"' in page


def test_fulfill_sends_lines_shipment_and_no_address_when_unchanged(
    client: TestClient, backend: FakeBackend
) -> None:
    nonce, response = _post_form(
        client,
        "/orders/ord-paid/fulfill",
        "/orders/ord-paid/fulfill",
        **{"qty-0": "1", "carrier": "DHL", "tracking_number": "AWB-77"},
        **{f"ship-{k}": v for k, v in ADDRESS.items()},
    )
    assert response.status_code == 303
    [sent] = backend.published
    assert isinstance(sent.data, FulfillmentRequested)
    assert sent.data.fulfillment_id == fulfillment_id(nonce, "ord-paid")
    assert [(r.line_id, r.quantity) for r in sent.data.lines or []] == [("L1", 1)]
    assert sent.data.shipment is not None and sent.data.shipment.tracking_number == "AWB-77"
    assert sent.data.shipping_address is None
    backend.apply_published()
    assert backend.orders.get("ord-paid").status is OrderStatus.PARTIALLY_FULFILLED


def test_a_fulfill_form_sent_after_the_order_was_fulfilled_meanwhile_says_so(
    client: TestClient, backend: FakeBackend
) -> None:
    page_path = "/orders/ord-paid/fulfill"
    forms = [_form(client, page_path, page_path) for _ in range(2)]
    fields = {"qty-0": "2", "carrier": "DHL", "tracking_number": "AWB-1"}
    for form in forms:
        data = form | fields | {f"ship-{k}": v for k, v in ADDRESS.items()}
        response = client.post(page_path, data=data)
        backend.apply_published()
    assert response.status_code == 422
    assert "Nothing is left to fulfill on this order" in response.text
    assert len(backend.published) == 1


def test_fulfill_sends_an_edited_address(client: TestClient, backend: FakeBackend) -> None:
    address = {f"ship-{k}": v for k, v in ADDRESS.items()} | {"ship-line1": "9 New Road"}
    _post_form(
        client,
        "/orders/ord-paid/fulfill",
        "/orders/ord-paid/fulfill",
        **{"qty-0": "2", "carrier": "UPS", "tracking_number": "1Z"},
        **address,
    )
    [sent] = backend.published
    assert isinstance(sent.data, FulfillmentRequested)
    assert sent.data.shipping_address is not None
    assert sent.data.shipping_address.line1 == "9 New Road"


def test_fulfill_validation_names_each_problem_readably(
    client: TestClient, backend: FakeBackend
) -> None:
    _, response = _post_form(
        client,
        "/orders/ord-paid/fulfill",
        "/orders/ord-paid/fulfill",
        **{
            "qty-0": "5",
            "carrier": "",
            "tracking_number": "",
            "tracking_url": "javascript:x",
            "ship-country": "Germany",
        },
    )
    text = response.text
    assert response.status_code == 422
    assert "at most 2 (what is still unfulfilled)" in text
    _, response = _post_form(
        client,
        "/orders/ord-paid/fulfill",
        "/orders/ord-paid/fulfill",
        **{
            "qty-0": "1",
            "carrier": "",
            "tracking_number": "",
            "tracking_url": "javascript:x",
            "ship-country": "Germany",
            "ship-name": "",
        },
    )
    text = response.text
    for message in (
        "Carrier: required for a shipment",
        "Airway bill: required for a shipment",
        "Tracking link: a web address starting with https://",
        "Country: a two-letter ISO 3166-1 code",
        "Recipient: required for a shipment",
    ):
        assert message in text
    _, response = _post_form(
        client, "/orders/ord-paid/fulfill", "/orders/ord-paid/fulfill", **{"qty-0": "0"}
    )
    assert "Choose a quantity above 0 for at least one line" in response.text
    assert backend.published == []


def test_a_digital_line_needs_access_credentials_or_instructions(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.orders.put(
        order_with(
            [placed("ord-d", lines=[line("D1", 1, "digital")]), captured("ord-d", "10.00")], "ord-d"
        )
    )
    _, response = _post_form(
        client, "/orders/ord-d/fulfill", "/orders/ord-d/fulfill", **{"qty-0": "1"}
    )
    assert "give an access URL, credentials or instructions" in response.text
    _, response = _post_form(
        client,
        "/orders/ord-d/fulfill",
        "/orders/ord-d/fulfill",
        **{"qty-0": "1", "password-0": "pw"},
    )
    assert response.status_code == 303
    [sent] = backend.published
    assert isinstance(sent.data, FulfillmentRequested) and sent.data.distributions
    assert sent.data.distributions[0].credentials is not None
    assert sent.data.shipment is None


def test_cancel_fulfillment_is_offered_only_for_completed_fulfillments(
    client: TestClient, backend: FakeBackend
) -> None:
    assert "Cancel fulfillment" in client.get("/orders/ord-shipped").text
    assert "Cancel fulfillment" not in client.get("/orders/ord-paid").text
    response = client.get("/orders/ord-paid/fulfillments/ful-404/cancel")
    assert response.status_code == 303
    _, response = _post_form(
        client,
        "/orders/ord-shipped/fulfillments/ful-1/cancel",
        "/orders/ord-shipped/fulfillments/ful-1/cancel",
        reason="damaged",
    )
    [sent] = backend.published
    assert sent.data == FulfillmentCancelRequested(fulfillment_id="ful-1", reason="damaged")


def test_a_refused_order_cancel_shows_the_pipelines_answer(
    client: TestClient, backend: FakeBackend
) -> None:
    page = client.get("/orders/ord-shipped/cancel").text
    assert "the pipeline refuses to cancel an order while a completed fulfillment" in page
    _post_form(
        client, "/orders/ord-shipped/cancel", "/orders/ord-shipped/cancel", reason="buyer asked"
    )
    [sent] = backend.published
    assert isinstance(sent.data, OrderCancelRequested)
    state = client.get(f"/orders/ord-shipped/state.json?event={sent.event_id}").json()
    assert state["events"][sent.event_id]["state"] == "pending"
    backend.apply_published()
    state = client.get(f"/orders/ord-shipped/state.json?event={sent.event_id}").json()
    assert state["events"][sent.event_id]["state"] == "refused"
    assert "cancel refused" in state["events"][sent.event_id]["summary"]


def test_an_accepted_order_cancel_reports_done(client: TestClient, backend: FakeBackend) -> None:
    _post_form(client, "/orders/ord-unpaid/cancel", "/orders/ord-unpaid/cancel")
    backend.apply_published()
    [sent] = backend.published
    state = client.get(f"/orders/ord-unpaid/state.json?event={sent.event_id}").json()
    assert state["events"][sent.event_id]["state"] == "done"
    assert backend.orders.get("ord-unpaid").status is OrderStatus.CANCELLED
    assert "Cancel order" not in client.get("/orders/ord-unpaid/live").text


def test_the_state_endpoint_follows_the_orders_version(
    client: TestClient, backend: FakeBackend
) -> None:
    before = client.get("/orders/ord-unpaid/state.json").json()["version"]
    _post_form(client, "/orders/ord-unpaid", "/orders/ord-unpaid/capture")
    backend.apply_published()
    assert client.get("/orders/ord-unpaid/state.json").json()["version"] > before


def test_order_ids_with_slashes_and_spaces_are_linked_and_served(
    client: TestClient, backend: FakeBackend
) -> None:
    odd = "shop/1 #7"
    backend.orders.put(order_with([placed(odd)], odd))
    listing = client.get("/orders").text
    assert 'href="/orders/shop%2F1%20%237"' in listing
    assert odd in client.get("/orders/shop%2F1%20%237").text
    fulfill = client.get("/orders/shop%2F1%20%237/fulfill")
    assert fulfill.status_code == 200
    assert "this request will wait (held) until it is" in fulfill.text  # not paid yet


def test_a_search_for_a_nul_character_holds_none_in_its_pattern_and_still_matches_it() -> None:
    pattern = search_filter(Search(text="a\x00b"))["$or"][0]["customer.name"]["$regex"]
    assert "\x00" not in pattern
    assert re.fullmatch(pattern, "a\x00b")


def test_search_filter_matches_name_email_number_and_id() -> None:
    query = search_filter(Search(text="a.b", status="fulfilled", delivery_status="none"))
    fields = [next(iter(clause)) for clause in query["$or"]]
    assert fields == ["customer.name", "customer.email", "order_number", "_id"]
    assert query["$or"][0]["customer.name"]["$regex"] == "a\\.b"
    assert query["status"] == "fulfilled"
    assert query["delivery_status"] == {"$in": ["none", None]}


def test_dead_letters_are_listed_and_replayed_after_a_preview(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.letters[Topic.ORDERS_PLACED] = [letter("ord-a"), letter("ord-b", "not_json", 1)]
    overview = client.get("/dead-letters").text
    assert "invalid_data 1" in overview and "not_json 1" in overview
    listing = client.get("/dead-letters/orders.placed").text
    assert "orders.placed[0]@1" in listing and "data.lines: Field required" in listing
    preview = client.get("/dead-letters/orders.placed/replay").text
    assert "2 letters would be replayed" in preview
    action = "/dead-letters/orders.placed/replay"
    data = {
        "csrf_token": hidden(preview, "csrf_token", action),
        "nonce": hidden(preview, "nonce", action),
        "upto": hidden(preview, "upto", action),
    }
    assert client.post("/dead-letters/orders.placed/replay", data=data).status_code == 303
    assert client.post("/dead-letters/orders.placed/replay", data=data).status_code == 303
    assert backend.replayed == [Topic.ORDERS_PLACED]
    # No further than the preview read: a letter arriving since was not reviewed.
    assert backend.replayed_until == [{0: 2}]
    assert "Replayed 2 dead letters" in client.get("/dead-letters/orders.placed").text
    assert client.get("/dead-letters/nope").status_code == 404


def test_a_replay_that_failed_says_it_did_not_finish_and_the_same_form_replays_later(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.letters[Topic.ORDERS_PLACED] = [letter("ord-a")]
    action = "/dead-letters/orders.placed/replay"
    data = _form(client, action, action) | {"upto": "0:1"}
    backend.failure = Unavailable("Kafka failed: KafkaTimeoutError")
    client.post(action, data=data)
    answer = client.get("/dead-letters/orders.placed").text
    assert "The replay did not finish: Kafka failed: KafkaTimeoutError" in answer
    assert "Nothing was replayed" not in answer
    backend.failure = ValueError("a defect")
    assert client.post(action, data=data).status_code == 500
    backend.failure = None
    assert client.post(action, data=data).status_code == 303
    assert backend.replayed == [Topic.ORDERS_PLACED]


@pytest.mark.parametrize("upto", [None, "", "0:x", "-1:3", "0:1,"], ids=repr)
def test_a_replay_form_without_the_previews_end_offsets_is_refused(
    client: TestClient, backend: FakeBackend, upto: str | None
) -> None:
    backend.letters[Topic.ORDERS_PLACED] = [letter("ord-a")]
    action = "/dead-letters/orders.placed/replay"
    data = _form(client, action, action) | ({} if upto is None else {"upto": upto})
    response = client.post(action, data=data)
    assert response.status_code == 400 and "Reload the page" in response.text
    assert backend.replayed == []


def test_update_tracking_sends_only_what_changed(client: TestClient, backend: FakeBackend) -> None:
    path = "/orders/ord-shipped/fulfillments/ful-1/tracking"
    page = client.get(path).text
    assert 'value="DHL"' in page and 'value="AWB1"' in page
    _, response = _post_form(client, path, path, carrier="DHL", tracking_number="AWB1")
    assert "Nothing changed" in response.text
    _, response = _post_form(
        client,
        path,
        path,
        carrier="DHL",
        tracking_number="AWB2",
        tracking_url="https://track.example/AWB2",
    )
    assert response.status_code == 303
    [sent] = backend.published
    assert sent.event_type is EventType.FULFILLMENT_TRACKING_UPDATED
    assert sent.data == FulfillmentTrackingUpdated(
        fulfillment_id="ful-1", tracking_number="AWB2", tracking_url="https://track.example/AWB2"
    )
    backend.apply_published()
    shipment = backend.orders.get("ord-shipped").fulfillments[0].shipment
    assert shipment is not None and shipment.tracking_number == "AWB2"


def test_a_status_report_is_sent_with_its_time_in_utc(
    client: TestClient, backend: FakeBackend
) -> None:
    path = "/orders/ord-shipped/fulfillments/ful-1/status"
    page = client.get(path).text
    assert '<option value="handed_over" selected>' in page
    _, response = _post_form(
        client, path, path, status="handed_over", happened_at="2999-01-01T00:00"
    )
    assert "Happened at: cannot be in the future" in response.text
    _, response = _post_form(client, path, path, status="lost", happened_at="yesterday")
    assert "Status: choose one of the list" in response.text
    assert "Happened at: a date and time" in response.text
    _, response = _post_form(
        client, path, path, status="handed_over", happened_at="2026-11-21T10:30", location="Hub 4"
    )
    assert response.status_code == 303
    [sent] = backend.published
    assert isinstance(sent.data, ShipmentStatusReported)
    assert sent.data.happened_at.isoformat() == "2026-11-21T10:30:00+00:00"
    assert sent.data.location == "Hub 4"
    backend.apply_published()
    assert "handed over" in client.get("/orders/ord-shipped/live").text
    assert '<option value="in_transit" selected>' in client.get(path).text


def test_tracking_and_status_forms_are_offered_for_completed_shipments_only(
    client: TestClient, backend: FakeBackend
) -> None:
    assert "Update tracking" in client.get("/orders/ord-shipped").text
    assert "Update tracking" not in client.get("/orders/ord-paid").text
    for form in ("tracking", "status"):
        response = client.get(f"/orders/ord-paid/fulfillments/ful-404/{form}")
        assert response.status_code == 303
    assert "not a completed shipment" in client.get("/orders/ord-paid").text


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("²", "enter a whole number"),
        ("\u0661", "enter a whole number"),
        ("9" * 4301, "enter a whole"),
    ],
    ids=["superscript-two", "arabic-indic-one", "4301-digits"],
)
def test_a_quantity_that_is_not_plain_ascii_digits_is_a_readable_error_and_sends_nothing(
    client: TestClient, backend: FakeBackend, typed: str, shown: str
) -> None:
    _, response = _post_form(
        client,
        "/orders/ord-paid/fulfill",
        "/orders/ord-paid/fulfill",
        **{"qty-0": typed, "carrier": "DHL", "tracking_number": "AWB-9"},
    )
    assert response.status_code == 422
    assert shown in response.text
    assert backend.published == []


@pytest.mark.parametrize(
    "moment", ["0999-01-01T00:00", "0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00"]
)
def test_a_status_time_outside_the_years_an_event_carries_is_a_readable_error(
    client: TestClient, backend: FakeBackend, moment: str
) -> None:
    path = "/orders/ord-shipped/fulfillments/ful-1/status"
    _, response = _post_form(client, path, path, status="handed_over", happened_at=moment)
    assert response.status_code == 422
    assert "Happened at: a date and time" in response.text
    assert backend.published == []


@pytest.mark.parametrize("page", ["²", "9" * 5000, "-1", "x"])
def test_a_page_number_that_is_not_one_shows_the_first_page(client: TestClient, page: str) -> None:
    response = client.get("/orders", params={"page": page})
    assert response.status_code == 200
    assert "ord-paid" in response.text


def test_a_country_typed_in_lower_case_is_taken_but_a_non_ascii_lookalike_is_refused(
    client: TestClient, backend: FakeBackend
) -> None:
    address = {f"ship-{k}": v for k, v in ADDRESS.items()}
    fields = {"qty-0": "1", "carrier": "DHL", "tracking_number": "AWB-3", **address}
    path = "/orders/ord-paid/fulfill"
    _, response = _post_form(client, path, path, **(fields | {"ship-country": "\u00df"}))
    assert response.status_code == 422
    assert "Country: a two-letter ISO 3166-1 code" in response.text
    assert backend.published == []
    _, response = _post_form(client, path, path, **(fields | {"ship-country": "de"}))
    assert response.status_code == 303
    [sent] = backend.published
    assert isinstance(sent.data, FulfillmentRequested)
    assert sent.data.shipping_address is not None and sent.data.shipping_address.country == "DE"


# ---- forms of any size, failures that leave the form sendable again -----------------------------


def _digital_order(
    client: TestClient, backend: FakeBackend, count: int
) -> tuple[str, dict[str, str]]:
    """A paid order of `count` digital lines, and its fulfill form's hidden fields."""
    lines = [line(f"D{n}", 1, "digital", "1.00") for n in range(count)]
    paid = [placed("ord-many", lines=lines), captured("ord-many", amount=f"{count}.00")]
    backend.orders.put(order_with(paid, "ord-many"))
    action = "/orders/ord-many/fulfill"
    return action, _form(client, action, action)


def test_a_fulfill_form_of_the_most_lines_an_order_may_have_is_read_and_sent(
    client: TestClient, backend: FakeBackend
) -> None:
    action, form = _digital_order(client, backend, MAX_ITEMS)
    for n in range(MAX_ITEMS):
        form |= {
            f"qty-{n}": "1",
            f"access_url-{n}": f"https://dl.example/{n}",
            f"instructions-{n}": "",
            f"username-{n}": "",
            f"password-{n}": "",
            f"token-{n}": "",
        }
    assert len(form) > 6 * MAX_ITEMS
    assert client.post(action, data=form).status_code == 303
    [sent] = backend.published
    assert isinstance(sent.data, FulfillmentRequested)
    assert len(sent.data.lines or []) == MAX_ITEMS


def test_credentials_are_sent_exactly_as_typed_spaces_included_and_blank_ones_are_not_given(
    client: TestClient, backend: FakeBackend
) -> None:
    action, form = _digital_order(client, backend, 1)
    form |= {"qty-0": "1", "username-0": " buyer", "password-0": " pa ss ", "token-0": "   "}
    assert client.post(action, data=form).status_code == 303
    [sent] = backend.published
    assert isinstance(sent.data, FulfillmentRequested)
    [given] = sent.data.distributions or []
    assert given.credentials is not None
    assert (given.credentials.username, given.credentials.password, given.credentials.token) == (
        " buyer",
        " pa ss ",
        None,  # blank: not given
    )


def test_a_form_larger_than_the_console_takes_is_refused_unread_with_a_readable_page(
    client: TestClient, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.app, "MAX_FORM_BYTES", 10_000)
    action = "/orders/ord-unpaid/capture"
    data = _form(client, "/orders/ord-unpaid", action)
    response = client.post(action, data=data | {"padding": "x" * 20_000})
    assert response.status_code == 413
    assert "larger than the console takes" in response.text
    assert backend.published == []


def test_a_send_that_failed_unexpectedly_leaves_the_form_sendable_again(
    client: TestClient, backend: FakeBackend
) -> None:
    action = "/orders/ord-unpaid/capture"
    data = _form(client, "/orders/ord-unpaid", action)
    backend.failure = ValueError("a defect")
    assert client.post(action, data=data).status_code == 500
    backend.failure = None
    assert client.post(action, data=data).status_code == 303
    assert len(backend.published) == 1
    assert "already sent" not in client.get("/orders/ord-unpaid").text


def test_an_event_too_large_for_the_contract_says_so_and_not_to_try_again(
    client: TestClient, backend: FakeBackend
) -> None:
    action = "/orders/ord-unpaid/capture"
    data = _form(client, "/orders/ord-unpaid", action)
    backend.failure = EventTooLarge("the event would be 1,200,000 bytes, above the limit")
    answer = client.post(action, data=data, follow_redirects=True).text
    assert "was not sent: the event would be 1,200,000 bytes" in answer
    assert "Try again" not in answer and backend.published == []


def test_a_send_kafka_did_not_acknowledge_says_it_may_still_arrive_and_may_be_sent_again(
    client: TestClient, backend: FakeBackend
) -> None:
    action = "/orders/ord-unpaid/capture"
    data = _form(client, "/orders/ord-unpaid", action)
    backend.failure = Unavailable("Kafka did not acknowledge in time", maybe_sent=True)
    answer = client.post(action, data=data, follow_redirects=True).text
    assert "may not have been sent" in answer and "may still arrive" in answer
    assert "was not sent" not in answer
    backend.failure = None
    assert client.post(action, data=data).status_code == 303
    assert len(backend.published) == 1
