"""The console in a real browser (Debian's Chromium through Playwright) against the real stack
and a running worker: each seed's workflow clicked through, login, CSRF and a double submit."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from console.queries import Search
from schemas.names import FulfillmentStatus, OrderStatus, Topic
from tests.conftest import Infra, Names
from tests.console.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    Served,
    address,
    order_line,
    payment_event,
    place,
    placed_event,
    require_chromium,
    screenshot_dir,
    serve_console,
)
from tests.e2e.harness import Harness, bounded

pytestmark = pytest.mark.e2e
LIVE = 45_000  # ms a page waits for the pipeline's answer to arrive by itself


@pytest.fixture(scope="module")
async def harness(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    token = uuid.uuid4().hex[:10]
    names = Names(prefix=f"t{token}.", database=f"test_{token}", group_id=f"group-{token}")
    pipeline = Harness(infra, names, tmp_path_factory.mktemp("console-worker"))
    await pipeline.start()
    try:
        yield pipeline
    finally:
        await pipeline.stop()


@pytest.fixture(scope="module")
async def console(harness: Harness) -> AsyncIterator[Served]:
    async with serve_console(harness.settings) as served:
        yield served


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def page(context: BrowserContext, console: Served) -> AsyncIterator[Page]:
    """A logged-in page; the test fails on any script error or CSP violation it shows."""
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    await log_in(opened, console.url)
    yield opened
    assert not [p for p in problems if "status of 4" not in p], problems


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = screenshot_dir(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def shot(page: Page, path: Path) -> None:
    """A full-page picture once the "just updated" highlight (1.2 s) has faded."""
    await page.wait_for_timeout(1300)
    await page.screenshot(path=str(path), full_page=True)


async def log_in(page: Page, url: str, password: str = PASSWORD) -> None:
    await page.goto(f"{url}/orders")
    await expect(page).to_have_url(f"{url}/login?next=%2Forders")
    await page.fill("#password", password)
    await page.click("button:has-text('Log in')")


async def open_order(page: Page, url: str, search: str, order_id: str) -> None:
    """Search the orders list as an operator does, then open the order by its id."""
    await page.goto(f"{url}/orders")
    await page.fill("#q", search)
    await page.click("button:has-text('Search')")
    await page.click(f"a.id:text-is('{order_id}')")
    await expect(page.locator("#order-id")).to_have_text(order_id)


async def submit(page: Page, selector: str) -> None:
    """Click a form's button and wait for the page it leads to (after the redirect)."""
    async with page.expect_navigation():
        await page.click(selector)


async def submit_by_double_click(page: Page, selector: str) -> None:
    """An impatient double click on a form's button, and the page it leads to."""
    async with page.expect_navigation():
        await page.dblclick(selector)


async def sent_and_done(page: Page, outcome: str = "Done") -> None:
    """The notification names the event sent, then shows the pipeline's answer by itself."""
    notice = page.locator(".notice[data-state]").last
    await expect(notice).to_contain_text("sent ")
    await expect(notice.locator("[data-result]")).to_contain_text(f"{outcome}:", timeout=LIVE)


async def mark_page(page: Page) -> None:
    """A mark a reload would wipe: the live updates below must come without one."""
    await page.evaluate("window.__notReloaded = true")


async def still_same_page(page: Page) -> None:
    assert await page.evaluate("window.__notReloaded === true"), "the page was reloaded"


async def input_records(harness: Harness, topic: Topic, order_id: str) -> list[dict[str, Any]]:
    """Every record of the order on an input topic, as sent."""
    consumer = AIOKafkaConsumer(bootstrap_servers=harness.settings.kafka_bootstrap)
    await consumer.start()
    try:
        name = harness.settings.topic(topic)
        await consumer._client.force_metadata_update()  # what the partition lookup reads
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or []]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[dict[str, Any]] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [json.loads(r.value) for r in records if r.key == order_id.encode()]
        return found
    finally:
        await consumer.stop()


def run_id() -> str:
    return uuid.uuid4().hex[:6]


# ---- the data provider -----------------------------------------------------------------------


@bounded(150)
async def test_data_provider_captures_payment_then_fulfills_with_credentials_never_shown(
    harness: Harness, console: Served, page: Page, pictures: Path
) -> None:
    run = run_id()
    order_id = f"dp-{run}"
    billing = address("Orbital Analytics GmbH", "Hafenstraße 5", "Hamburg", "20457", "DE")
    await place(
        harness,
        placed_event(
            order_id,
            f"DP-{run}",
            ("Mina Okafor", "mina@orbital.example"),
            [
                order_line("feed", "Weather data feed, 1 year", 1, "1200.00", "digital"),
                order_line("img", "Satellite imagery archive", 1, "300.00", "digital"),
            ],
            billing=billing,
            phone="+49 40 123456",
        ),
    )
    await open_order(page, console.url, f"DP-{run}", order_id)
    for text in (
        "Mina Okafor",
        "mina@orbital.example",
        "+49 40 123456",
        "1500.00 EUR",
        "Orbital Analytics GmbH",
        "Weather data feed, 1 year",
    ):
        await expect(page.locator("#live")).to_contain_text(text)
    await expect(page.locator("#payment-status")).to_have_text("pending")
    await shot(page, pictures / "order-awaiting-payment.png")

    await submit(page, "button:has-text('Approve and capture payment')")
    await mark_page(page)
    await sent_and_done(page)
    await expect(page.locator("#payment-status")).to_have_text("captured", timeout=LIVE)
    await expect(page.locator("#order-status")).to_have_text("unfulfilled", timeout=LIVE)
    await still_same_page(page)

    await page.click("a:has-text('Fulfill items')")
    await expect(page.locator("h1")).to_have_text("Manual fulfillment")
    await expect(page.locator("#qty-0")).to_have_value("1")
    await page.fill("#access_url-0", "https://data.orbital.example/feeds/42")
    await page.fill("#username-0", "mina-feed")
    await page.fill("#password-0", "Feed-Secret-7731")
    await page.fill("#token-1", "tok-Imagery-99xz")
    await page.fill("#instructions-1", "Use the token as a bearer header.")
    await shot(page, pictures / "fulfill-digital.png")
    await submit(page, "#create-fulfillment")
    await mark_page(page)
    await sent_and_done(page)
    await expect(page.locator("#order-status")).to_have_text("fulfilled", timeout=LIVE)
    await expect(page.locator(".distributions")).to_contain_text("sealed (write-only, never shown)")
    await still_same_page(page)
    await shot(page, pictures / "order-digital-fulfilled.png")

    for path in ("", "/live", "/fulfill"):
        await page.goto(f"{console.url}/orders/{order_id}{path}")
        html = await page.content()
        for secret in ("Feed-Secret-7731", "tok-Imagery-99xz", "mina-feed"):
            assert secret not in html

    # The platform got them in fulfillment.completed: the only place they appear.
    def delivered() -> list[dict[str, Any]]:
        return [c for c in harness.seen("fulfillments.completed") if c["subject"] == order_id]

    await harness.until(lambda: bool(delivered()), 30, "the order's fulfillment.completed")
    [completed] = delivered()
    credentials = {d["line_id"]: d.get("credentials") for d in completed["data"]["distributions"]}
    assert credentials["feed"] == {"username": "mina-feed", "password": "Feed-Secret-7731"}


@bounded(90)
async def test_an_open_order_page_shows_what_the_pipeline_applies_without_a_reload(
    harness: Harness, console: Served, page: Page
) -> None:
    run = run_id()
    order_id = await place(
        harness,
        placed_event(
            f"live-{run}",
            f"LIVE-{run}",
            ("Lou Live", "lou@example.com"),
            [order_line("L1", "Radio", 1, "80.00")],
            shipping=address("Lou Live", "5 Wave St", "Cork", "T12", "IE"),
        ),
    )
    await page.goto(f"{console.url}/orders/{order_id}")
    await expect(page.locator("#payment-status")).to_have_text("pending")
    await mark_page(page)
    # The checkout captures the payment: the console did not send it, the page still follows.
    await harness.send(Topic.PAYMENTS_CAPTURED, payment_event(order_id, "80.00"))
    await expect(page.locator("#payment-status")).to_have_text("captured", timeout=LIVE)
    await expect(page.locator("#order-status")).to_have_text("unfulfilled", timeout=LIVE)
    await expect(page.locator("table.timeline")).to_contain_text("captured 80.00 EUR")
    await still_same_page(page)


# ---- the dropshipper -------------------------------------------------------------------------


@bounded(150)
async def test_dropshipper_searches_fulfills_to_an_edited_address_cancels_and_reads_the_timeline(
    harness: Harness, console: Served, page: Page, pictures: Path
) -> None:
    run = run_id()
    shipping = address("Grace Hopper", "12 Old Lane", "Arlington", "22201", "US")
    others = [("Alan Turing", "alan@example.com"), ("Ada Lovelace", "ada@example.com")]
    for index, customer in enumerate(others):
        await place(
            harness,
            placed_event(
                f"ds-{run}-{index}",
                f"DS-{run}-{index}",
                customer,
                [order_line("L1", "Desk lamp", 1, "40.00")],
                shipping=shipping,
            ),
            paid=True,
        )
    order_id = f"ds-{run}-grace"
    await place(
        harness,
        placed_event(
            order_id,
            f"DS-{run}-7",
            ("Grace Hopper", f"grace.{run}@example.com"),
            [
                order_line("mug", "Enamel mug", 2, "12.50"),
                order_line("tee", "Cotton tee", 1, "20.00"),
            ],
            shipping=shipping,
            billing=shipping,
        ),
        paid=True,
    )

    await page.goto(f"{console.url}/orders")
    await shot(page, pictures / "orders.png")
    await page.fill("#q", f"grace.{run}")
    await page.click("button:has-text('Search')")
    rows = page.locator("table.orders tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(order_id)
    await page.click(f"a:text-is('DS-{run}-7')")
    await expect(page.locator("#order-id")).to_have_text(order_id)

    await page.click("a:has-text('Fulfill items')")
    await expect(page.locator("#qty-0")).to_have_value("2")
    await expect(page.locator("#qty-1")).to_have_value("1")
    await expect(page.locator("#ship-line1")).to_have_value("12 Old Lane")
    await page.fill("#ship-line1", "1 Navy Yard Drive")
    await page.fill("#ship-city", "Washington")
    await page.fill("#ship-postal_code", "20374")
    await page.fill("#carrier", "FedEx")
    await page.fill("#tracking_number", "7781 2231 9001")
    await page.fill("#tracking_url", "https://tracking.example/7781")
    await shot(page, pictures / "fulfill-shipment.png")
    await page.click("#create-fulfillment")
    await sent_and_done(page)
    await expect(page.locator("#order-status")).to_have_text("fulfilled", timeout=LIVE)
    await expect(page.locator("#live")).to_contain_text("1 Navy Yard Drive")
    await expect(page.locator(".shipment a")).to_have_attribute(
        "href", "https://tracking.example/7781"
    )
    await expect(page.locator("table.timeline")).to_contain_text("order.shipping_address_changed")

    await page.click("a:has-text('Cancel fulfillment')")
    await page.fill("#reason", "buyer moved again")
    await submit(page, "#confirm")
    await mark_page(page)
    await sent_and_done(page)
    await expect(page.locator("#order-status")).to_have_text("unfulfilled", timeout=LIVE)
    await still_same_page(page)
    await expect(page.locator(".fulfillment .badge").first).to_have_text("cancelled")
    await expect(page.locator("a:has-text('Cancel fulfillment')")).to_have_count(0)
    timeline = page.locator("table.timeline")
    await expect(timeline).to_contain_text(
        "fulfillment undone (cancel_requested): buyer moved again"
    )
    await shot(page, pictures / "order-timeline.png")
    order = await harness.order(order_id)
    assert order.fulfillments[0].status is FulfillmentStatus.CANCELLED
    assert order.shipping_address is not None and order.shipping_address.city == "Washington"


# ---- the web-store owner ---------------------------------------------------------------------


@bounded(180)
async def test_web_store_owner_ships_in_two_parts_and_cancels_orders_refused_then_accepted(
    harness: Harness, console: Served, page: Page, pictures: Path
) -> None:
    run = run_id()
    shipping = address("Lin Wei", "88 Harbour Road", "Wan Chai", "999077", "HK")
    order_id = f"ws-{run}"
    await place(
        harness,
        placed_event(
            order_id,
            f"WS-{run}",
            ("Lin Wei", f"lin.{run}@example.com"),
            [
                order_line("chair", "Oak chair", 2, "150.00"),
                order_line("table", "Oak table", 1, "600.00"),
            ],
            shipping=shipping,
        ),
        paid=True,
    )
    await open_order(page, console.url, f"WS-{run}", order_id)

    await page.click("a:has-text('Fulfill items')")
    await page.fill("#qty-0", "1")
    await page.fill("#qty-1", "0")
    await page.fill("#carrier", "DHL Express")
    await page.fill("#tracking_number", "JD014600006543")
    await page.click("#create-fulfillment")
    await sent_and_done(page)
    await expect(page.locator("#order-status")).to_have_text("partially fulfilled", timeout=LIVE)
    await expect(page.locator(".awb")).to_have_text("JD014600006543")
    await expect(page.locator(".carrier")).to_have_text("DHL Express")
    await shot(page, pictures / "order-partially-fulfilled.png")

    await page.click("a:has-text('Fulfill items')")
    await expect(page.locator("#qty-0")).to_have_value("1")
    await expect(page.locator("#qty-1")).to_have_value("1")
    await page.fill("#carrier", "DHL Express")
    await page.fill("#tracking_number", "JD014600006544")
    await page.click("#create-fulfillment")
    await sent_and_done(page)
    await expect(page.locator("#order-status")).to_have_text("fulfilled", timeout=LIVE)

    # The contract refuses to cancel an order with completed fulfillments: the page says so.
    await page.click("a:has-text('Cancel order')")
    await expect(page.locator(".notice-warning")).to_contain_text("Cancel those fulfillments first")
    await page.click("#confirm")
    await sent_and_done(page, "Refused by the pipeline")
    await expect(page.locator(".notice[data-state] [data-result]")).to_contain_text(
        "cancel refused"
    )
    await expect(page.locator("#order-status")).to_have_text("fulfilled")
    await expect(page.locator("table.timeline")).to_contain_text("order.cancel_refused")

    # An order nothing was fulfilled of is cancelled.
    unpaid = await place(
        harness,
        placed_event(
            f"ws-{run}-b",
            f"WS-{run}-B",
            ("Lin Wei", f"lin.{run}@example.com"),
            [order_line("lamp", "Paper lamp", 1, "35.00")],
            shipping=shipping,
        ),
    )
    await open_order(page, console.url, f"WS-{run}-B", unpaid)
    await page.click("a:has-text('Cancel order')")
    await page.fill("#reason", "out of stock")
    await page.click("#confirm")
    await sent_and_done(page)
    await expect(page.locator("#order-status")).to_have_text("cancelled", timeout=LIVE)
    await expect(page.locator("a:has-text('Fulfill items')")).to_have_count(0)
    order = await harness.order(unpaid)
    assert order.status is OrderStatus.CANCELLED


@bounded(150)
async def test_web_store_owner_updates_the_airway_bill_and_reports_the_hand_over(
    harness: Harness, console: Served, page: Page
) -> None:
    run = run_id()
    shipping = address("Lin Wei", "88 Harbour Road", "Wan Chai", "999077", "HK")
    order_id = f"wt-{run}"
    await place(
        harness,
        placed_event(
            order_id,
            f"WT-{run}",
            ("Lin Wei", f"lin.{run}@example.com"),
            [order_line("chair", "Oak chair", 1, "150.00")],
            shipping=shipping,
        ),
        paid=True,
    )
    await open_order(page, console.url, f"WT-{run}", order_id)
    await page.click("a:has-text('Fulfill items')")
    await page.fill("#carrier", "DHL")
    await page.fill("#tracking_number", "OLD-123")
    await page.click("#create-fulfillment")
    await sent_and_done(page)

    await page.click("a:has-text('Update tracking')")
    await expect(page.locator("#tracking_number")).to_have_value("OLD-123", timeout=LIVE)
    await page.fill("#tracking_number", "NEW-456")
    await page.click("#save-tracking")
    await sent_and_done(page)
    await expect(page.locator(".awb")).to_have_text("NEW-456", timeout=LIVE)

    await page.click("a:has-text('Report shipment status')")
    await page.select_option("#status", "handed_over")
    await page.fill("#location", "Hong Kong hub")
    await page.click("#report-status")
    await sent_and_done(page)
    await expect(page.locator(".fulfillment")).to_contain_text("handed over", timeout=LIVE)
    await expect(page.locator(".shipment table")).to_contain_text("Hong Kong hub")


@bounded(120)
async def test_the_store_is_searched_filtered_sorted_and_paged_as_the_orders_page_asks(
    harness: Harness, console: Served
) -> None:
    run = run_id()
    shipping = address("Pat Page", "1 Leaf St", "Bern", "3000", "CH")
    ids = [
        await place(
            harness,
            placed_event(
                f"pg-{run}-{index}",
                f"PG-{run}-{index}",
                (f"Pat Page {run}", f"pat.{run}@example.com"),
                [order_line("L1", "Page", 1, "5.00")],
                shipping=shipping,
            ),
            paid=index == 0,
        )
        for index in range(3)
    ]
    orders = console.backend.orders
    everything = await orders.search(Search(text=f"pat.{run}@EXAMPLE", page_size=2))
    assert everything.total == 3 and everything.pages == 2
    assert [o["_id"] for o in everything.orders] == [ids[2], ids[1]]  # newest placed first
    second = await orders.search(Search(text=f"pat.{run}", page=2, page_size=2))
    assert [o["_id"] for o in second.orders] == [ids[0]]
    oldest = await orders.search(Search(text=f"PG-{run}", oldest_first=True))
    assert [o["_id"] for o in oldest.orders] == ids
    paid = await orders.search(
        Search(text=f"pg-{run}", status="unfulfilled", delivery_status="none")
    )
    assert [o["_id"] for o in paid.orders] == [ids[0]]
    delivered = await orders.search(Search(text=f"pg-{run}", delivery_status="delivered"))
    assert delivered.total == 0
    assert (await orders.search(Search(text=f"{run}.*"))).total == 0  # text, not a pattern


# ---- login, CSRF, double submit ------------------------------------------------------------


@bounded(90)
async def test_login_is_required_and_forged_or_cross_site_forms_are_refused(
    harness: Harness, console: Served, context: BrowserContext, pictures: Path
) -> None:
    run = run_id()
    order_id = await place(
        harness,
        placed_event(
            f"sec-{run}",
            f"SEC-{run}",
            ("Sam Secure", "sam@example.com"),
            [order_line("L1", "Safe", 1, "99.00")],
            shipping=address("Sam Secure", "1 Vault St", "Zurich", "8001", "CH"),
        ),
    )
    page = await context.new_page()
    await page.goto(f"{console.url}/orders/{order_id}")
    await expect(page).to_have_url(f"{console.url}/login?next=%2Forders%2F{order_id}")
    await shot(page, pictures / "login.png")
    await page.fill("#password", "not the password")
    await page.click("button:has-text('Log in')")
    await expect(page.locator(".errors")).to_have_text("Wrong password.")
    await page.fill("#password", PASSWORD)
    await page.click("button:has-text('Log in')")
    await expect(page.locator("#order-id")).to_have_text(order_id)
    cookie = next(c for c in await context.cookies() if c["name"] == "fulfillment_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # A form whose CSRF token was tampered with is refused, and nothing is sent.
    await page.eval_on_selector(
        "form[action$='/capture'] input[name=csrf_token]", "input => input.value = 'forged'"
    )
    await page.click("button:has-text('Approve and capture payment')")
    await expect(page.locator("h1")).to_have_text("This form has expired")
    # A form on another site posting to the console: the SameSite cookie stays home.
    attacker = await context.new_page()
    await attacker.set_content(
        f'<form method="post" action="{console.url}/orders/{order_id}/capture">'
        '<input name="nonce" value="' + "a" * 32 + '"><button>win a prize</button></form>'
    )
    async with attacker.expect_navigation():
        await attacker.click("button")
    # Refused as from no session: nothing sent, and a way to log in.
    assert "Your session has ended" in await attacker.content()
    assert await input_records(harness, Topic.PAYMENTS_CAPTURED, order_id) == []


@bounded(120)
async def test_a_link_to_an_order_followed_from_another_site_finds_the_operator_logged_in(
    harness: Harness, console: Served, page: Page
) -> None:
    run = run_id()
    order_id = await place(
        harness,
        placed_event(
            f"link-{run}",
            f"LNK-{run}",
            ("Lee Link", "lee@example.com"),
            [order_line("L1", "Chain", 1, "5.00")],
            shipping=address("Lee Link", "3 Hop Lane", "York", "YO1 7HH", "GB"),
        ),
    )
    # A ticket or a chat elsewhere links to the order.
    ticket = await page.context.new_page()
    await ticket.set_content(f'<a href="{console.url}/orders/{order_id}">the order</a>')
    async with ticket.expect_navigation():
        await ticket.click("a")
    await expect(ticket.locator("#order-id")).to_have_text(order_id)
    # The operator's other tab is still logged in.
    await page.goto(f"{console.url}/orders")
    await expect(page).to_have_url(f"{console.url}/orders")


@bounded(120)
async def test_a_double_click_or_a_resent_form_stays_one_event(
    harness: Harness, console: Served, page: Page
) -> None:
    run = run_id()
    order_id = await place(
        harness,
        placed_event(
            f"dbl-{run}",
            f"DBL-{run}",
            ("Dee Double", "dee@example.com"),
            [order_line("L1", "Twin bell", 2, "25.00")],
            shipping=address("Dee Double", "2 Echo Road", "Leeds", "LS1 1AA", "GB"),
        ),
    )
    await page.goto(f"{console.url}/orders/{order_id}")
    form = await page.evaluate(
        """() => {
            const form = document.querySelector("form[action$='/capture']");
            return {action: form.action, fields: Object.fromEntries(new FormData(form))};
        }"""
    )
    await submit_by_double_click(page, "button:has-text('Approve and capture payment')")
    await expect(page.locator("#payment-status")).to_have_text("captured", timeout=LIVE)
    # The same form sent again, three times at once: a retried request, or back and resubmit.
    statuses = await page.evaluate(
        """async ({action, fields}) => {
            const send = () => fetch(action, {method: "POST", body: new URLSearchParams(fields),
                                              redirect: "manual"});
            return (await Promise.all([send(), send(), send()])).map(r => r.type);
        }""",
        form,
    )
    assert statuses == ["opaqueredirect"] * 3  # accepted as "already sent", nothing sent
    await harness.settled(order_id, lambda o: o.payment_status.value == "captured")
    sent = await input_records(harness, Topic.PAYMENTS_CAPTURED, order_id)
    assert len(sent) == 1
    order = await harness.order(order_id)
    assert order.captured_amount == "50.00"
    assert len(order.captures) == 1

    await page.click("a:has-text('Fulfill items')")
    await page.fill("#carrier", "Royal Mail")
    await page.fill("#tracking_number", "RM123456789GB")
    await submit_by_double_click(page, "#create-fulfillment")
    await expect(page.locator("#order-status")).to_have_text("fulfilled", timeout=LIVE)
    requests = await input_records(harness, Topic.FULFILLMENTS_REQUESTED, order_id)
    assert len(requests) == 1
    order = await harness.order(order_id)
    assert [f.status for f in order.fulfillments] == [FulfillmentStatus.COMPLETED]


@bounded(120)
async def test_validation_messages_are_readable_in_the_browser_before_anything_is_sent(
    harness: Harness, console: Served, page: Page, pictures: Path
) -> None:
    run = run_id()
    order_id = await place(
        harness,
        placed_event(
            f"val-{run}",
            f"VAL-{run}",
            ("Val Idate", "val@example.com"),
            [
                order_line("L1", "Big box", 3, "10.00"),
                order_line("D1", "E-book", 1, "5.00", "digital"),
            ],
            shipping=address("Val Idate", "3 Check St", "Oslo", "0150", "NO"),
        ),
        paid=True,
    )
    await page.goto(f"{console.url}/orders/{order_id}/fulfill")
    await page.fill("#qty-0", "7")
    await page.fill("#ship-country", "N0")
    await page.click("#create-fulfillment")
    errors = page.locator("#form-errors")
    await expect(errors).to_contain_text("Big box: at most 3 (what is still unfulfilled)")
    await expect(errors).to_contain_text("Carrier: required for a shipment")
    await expect(errors).to_contain_text("E-book: give an access URL, credentials or instructions")
    await expect(errors).to_contain_text("Country: a two-letter ISO 3166-1 code")
    await shot(page, pictures / "fulfill-validation.png")
    assert await input_records(harness, Topic.FULFILLMENTS_REQUESTED, order_id) == []
    # The server checks too: the same form without the page's script is refused readably.
    await page.evaluate("document.querySelector('#fulfill-form').removeAttribute('data-validate')")
    await page.click("#create-fulfillment")
    await expect(page.locator("#form-errors")).to_contain_text(
        "at most 3 (what is still unfulfilled)"
    )
    assert await input_records(harness, Topic.FULFILLMENTS_REQUESTED, order_id) == []


# ---- dead letters ----------------------------------------------------------------------------


@bounded(150)
async def test_dead_letters_are_listed_by_reason_and_replayed_after_a_preview(
    harness: Harness, console: Served, page: Page, pictures: Path
) -> None:
    run = run_id()
    broken = placed_event(
        f"dl-{run}",
        f"DL-{run}",
        ("Dot Letter", "dot@example.com"),
        [order_line("L1", "Thing", 1, "1.00")],
    )
    del broken["data"]["lines"]
    await harness.send(Topic.ORDERS_PLACED, broken)
    await harness.send_raw(Topic.ORDERS_PLACED, f"dl-{run}-x".encode(), b"{not json")
    await harness.dead_letter(Topic.ORDERS_PLACED, f"dl-{run}".encode())
    await harness.dead_letter(Topic.ORDERS_PLACED, f"dl-{run}-x".encode())
    # Each dead-letter page reads Kafka topics from their start: slower than a store query.
    page.set_default_timeout(90_000)

    await page.click("nav a:has-text('Dead letters')")
    row = page.locator("tr", has_text="orders.placed").first
    await expect(row).to_contain_text("invalid_data")
    await expect(row).to_contain_text("not_json")
    await shot(page, pictures / "dead-letters.png")
    await page.click("a:has-text('Inspect')")
    letters = page.locator("table.letters")
    await expect(letters).to_contain_text(f"dl-{run}")
    await expect(letters).to_contain_text("data.lines: Field required")
    await expect(letters).to_contain_text("orders.placed[")
    await page.click("a.badge:has-text('not_json')")
    await expect(page.locator("table.letters tbody tr")).to_have_count(1)

    await page.click("a:has-text('Replay…')")
    await expect(page.locator("h2")).to_contain_text("would be replayed")
    await expect(page.locator("table.letters")).to_contain_text(f"dl-{run}")
    await shot(page, pictures / "replay-preview.png")
    await page.click("#confirm-replay")
    await expect(page.locator(".notice-success")).to_contain_text("Replayed")
    # Still broken, so they come back once more, marked as replayed, and a new preview
    # leaves them out.
    await harness.until(
        lambda: (
            sum(
                1
                for letter in harness.seen("orders.placed.dlq")
                if letter["key"] == f"dl-{run}".encode()
            )
            == 2
        ),
        60,
        "the replayed letter",
    )
    await page.click("a:has-text('Replay…')")
    await expect(page.locator("section.card")).to_contain_text("that failed again after a replay")
