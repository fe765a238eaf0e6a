"""The console's security rules at the HTTP level: login, session cookie, CSRF, headers,
credentials that are write-only, errors that reveal nothing, loopback by default."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import console.app
from config import is_loopback
from console import letters, pages
from console.security import COOKIE, console_password
from console.server import ConsoleError, check_port, config, login_lines, serve
from schemas.names import Topic
from tests.console.conftest import PASSWORD, hidden, log_in
from tests.console.fakes import FakeBackend, letter, order_with
from tests.factories import captured, line, placed

TEMPLATES = Path(__file__).parents[2] / "console" / "templates"


def _routes(app: FastAPI, method: str) -> list[str]:
    """Every route path of `method`, with sample values for its parameters."""
    paths = []
    for route in [*pages.auth.routes, *pages.router.routes, *letters.router.routes]:
        if isinstance(route, APIRoute) and method in (route.methods or set()):
            path = re.sub(r"\{order_id(:path)?\}", "ord-paid", route.path)
            path = re.sub(r"\{fulfillment(:path)?\}", "ful-1", path)
            paths.append(re.sub(r"\{name\}", "orders.placed", path))
    return paths


def test_every_page_redirects_to_login_without_a_session(
    anonymous: TestClient, app: FastAPI
) -> None:
    pages = [p for p in _routes(app, "GET") if p not in ("/login", "/", "/favicon.ico")]
    assert len(pages) >= 10
    for path in pages:
        response = anonymous.get(path)
        if path.endswith(".json"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path


def test_every_action_is_refused_without_login_and_sends_nothing(
    anonymous: TestClient, app: FastAPI, backend: FakeBackend
) -> None:
    actions = [p for p in _routes(app, "POST") if p != "/login"]
    assert len(actions) >= 6
    for path in actions:
        assert anonymous.post(path, data={"nonce": "0" * 32}).status_code == 401, path
    assert backend.published == []


def test_a_wrong_password_is_refused(anonymous: TestClient) -> None:
    page = anonymous.get("/login")
    response = anonymous.post(
        "/login", data={"csrf_token": hidden(page.text, "csrf_token"), "password": "guess"}
    )
    assert response.status_code == 401
    assert "Wrong password" in response.text
    assert anonymous.get("/orders").status_code == 303


def test_logging_in_starts_a_new_session_token(anonymous: TestClient) -> None:
    anonymous.get("/login")
    before = anonymous.cookies[COOKIE]
    log_in(anonymous)
    assert anonymous.cookies[COOKIE] != before
    assert anonymous.get("/orders").status_code == 200


def test_logging_out_ends_the_session(client: TestClient) -> None:
    page = client.get("/orders")
    old = client.cookies[COOKIE]
    token = hidden(page.text, "csrf_token", "/logout")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/orders").status_code == 303
    client.cookies.set(COOKIE, old)
    assert client.get("/orders").status_code == 303


def test_logging_out_has_the_browser_forget_the_session_cookie(client: TestClient) -> None:
    token = hidden(client.get("/orders").text, "csrf_token", "/logout")
    response = client.post("/logout", data={"csrf_token": token})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "Max-Age=0" in cookie
    assert "HttpOnly" in cookie and "Path=/" in cookie
    assert COOKIE not in client.cookies


def test_a_request_with_an_unknown_session_cookie_leaves_the_browsers_cookies_alone(
    anonymous: TestClient,
) -> None:
    # It may be a poll from before a login whose answer lands after the login's own.
    anonymous.cookies.set(COOKIE, "a-session-this-console-never-made")
    response = anonymous.get("/orders/ord-paid/state.json")
    assert "Max-Age=0" not in response.headers.get("set-cookie", "")


def test_a_login_form_larger_than_a_password_needs_is_refused_unread(
    anonymous: TestClient,
) -> None:
    # Read before anyone has logged in: no one gets the console to take megabytes first.
    token = hidden(anonymous.get("/login").text, "csrf_token", "/login")
    response = anonymous.post(
        "/login", data={"csrf_token": token, "password": "x", "next": "/" + "a" * 100_000}
    )
    assert response.status_code == 413 and "(64 KiB)" in response.text


def test_a_method_a_path_does_not_take_is_refused_saying_which_it_takes(
    client: TestClient,
) -> None:
    response = client.delete("/orders")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_login_returns_only_to_a_local_path(app: FastAPI) -> None:
    for target, expected in [
        ("/orders?q=x", "/orders?q=x"),
        ("//evil.example/", "/orders"),
        ("https://evil.example/", "/orders"),
        ("/\\evil", "/orders"),
        # Not a 50 kB Location header either.
        ("/orders?q=" + "x" * 50_000, "/orders"),
    ]:
        with TestClient(app, follow_redirects=False) as anonymous:
            page = anonymous.get("/login")
            response = anonymous.post(
                "/login",
                data={
                    "csrf_token": hidden(page.text, "csrf_token"),
                    "password": PASSWORD,
                    "next": target,
                },
            )
        assert response.headers["location"] == expected


def test_session_cookie_is_httponly_and_samesite_lax(anonymous: TestClient) -> None:
    cookie = anonymous.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http on loopback; see the https test
    assert "path=/" in cookie


def test_session_cookie_is_secure_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://console.test", follow_redirects=False) as client:
        cookie = client.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_every_action_without_the_csrf_token_is_refused_and_sends_nothing(
    client: TestClient, app: FastAPI, backend: FakeBackend
) -> None:
    for path in _routes(app, "POST"):
        for token in (None, "forged", hidden(TestClient(app).get("/login").text, "csrf_token")):
            data = {"nonce": "a" * 32, "reason": "x"} | ({"csrf_token": token} if token else {})
            response = client.post(path, data=data)
            assert response.status_code == 403, (path, token)
            assert "Nothing was sent" in response.text
    assert backend.published == []


def test_login_form_needs_its_csrf_token(anonymous: TestClient) -> None:
    anonymous.get("/login")
    assert anonymous.post("/login", data={"password": PASSWORD}).status_code == 403
    assert anonymous.get("/orders").status_code == 303


def test_security_headers_are_on_every_response(anonymous: TestClient, client: TestClient) -> None:
    responses = [
        anonymous.get("/login"),
        anonymous.get("/orders"),
        client.get("/orders"),
        client.get("/orders/ord-paid"),
        client.get("/orders/no-such-order"),
        client.get("/static/console.js"),
        client.get("/no/such/page"),
    ]
    for response in responses:
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/orders").headers["cache-control"] == "no-store"


def test_templates_have_no_inline_script_style_or_handlers() -> None:
    for template in TEMPLATES.glob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), template.name
        assert not re.search(r"\sstyle=", source), template.name
        assert not re.search(r"<style", source), template.name
        assert not re.search(r"\son[a-z]+=", source), template.name


def test_credentials_are_never_rendered_back(client: TestClient, backend: FakeBackend) -> None:
    lines = [line("D1", 1, "digital"), line("D2", 1, "digital")]
    backend.orders.put(
        order_with([placed("ord-digital", lines=lines), captured("ord-digital")], "ord-digital")
    )
    page = client.get("/orders/ord-digital/fulfill").text
    action = "/orders/ord-digital/fulfill"
    form = {
        "csrf_token": hidden(page, "csrf_token", action),
        "nonce": hidden(page, "nonce", action),
        "qty-0": "1",
        "qty-1": "1",
        "username-0": "buyer",
        "password-0": "s3cret-Pa55",
        "token-0": "tok-Very-Secret",
        # The second line has nothing: the form comes back with an error.
    }
    again = client.post("/orders/ord-digital/fulfill", data=form)
    assert again.status_code == 422
    assert "give an access URL, credentials or instructions" in again.text
    for secret in ("s3cret-Pa55", "tok-Very-Secret"):
        assert secret not in again.text
    assert "enter them again" in again.text
    form["access_url-1"] = "https://data.example/2"
    assert client.post("/orders/ord-digital/fulfill", data=form).status_code == 303
    backend.apply_published()
    shown = client.get("/orders/ord-digital").text + client.get("/orders/ord-digital/live").text
    for secret in ("s3cret-Pa55", "tok-Very-Secret", "buyer"):
        assert secret not in shown
    assert "sealed (write-only, never shown)" in shown


def test_an_unexpected_error_reveals_and_logs_no_submitted_value(
    client: TestClient, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    page = client.get("/orders/ord-unpaid").text
    backend.failure = ValueError("cannot publish password=hunter2-secret")
    with caplog.at_level(logging.ERROR):
        response = client.post(
            "/orders/ord-unpaid/capture",
            data={
                "csrf_token": hidden(page, "csrf_token", "/orders/ord-unpaid/capture"),
                "nonce": hidden(page, "nonce", "/orders/ord-unpaid/capture"),
            },
        )
    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert "ValueError" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_password_is_generated_when_none_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FULFILLMENT_CONSOLE_PASSWORD", raising=False)
    first, generated = console_password()
    assert generated and len(first) >= 16
    assert console_password()[0] != first
    monkeypatch.setenv("FULFILLMENT_CONSOLE_PASSWORD", "from-env")
    assert console_password() == ("from-env", False)


def test_a_generated_password_is_printed_and_a_configured_one_is_not() -> None:
    assert "gen-pw" in " ".join(login_lines("http://127.0.0.1:8000/", "gen-pw", True))
    assert "env-pw" not in " ".join(login_lines("http://127.0.0.1:8000/", "env-pw", False))


def test_the_console_binds_to_loopback_by_default() -> None:
    from cli.main import console_command

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    default = inspect.signature(console_command).parameters["host"].default
    assert default.default == "127.0.0.1"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


def test_every_form_on_every_page_carries_the_sessions_csrf_token(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.letters[Topic.ORDERS_PLACED] = [letter()]
    pages = [
        "/orders",
        "/orders/ord-unpaid",
        "/orders/ord-shipped",
        "/orders/ord-paid/fulfill",
        "/orders/ord-shipped/cancel",
        "/orders/ord-shipped/fulfillments/ful-1/cancel",
        "/orders/ord-unpaid/live",
        "/dead-letters",
        "/dead-letters/orders.placed/replay",
    ]
    token = hidden(client.get("/orders").text, "csrf_token", "/logout")
    forms = 0
    for path in pages:
        html = client.get(path).text
        for form in re.findall(r'<form method="post".*?</form>', html, re.S):
            forms += 1
            assert f'name="csrf_token" value="{token}"' in form, (path, form[:200])
    assert forms >= 10


def test_visits_without_a_session_keep_nothing_and_cannot_push_operators_out(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import console.security

    sessions = app.state.console.sessions
    before = len(sessions)
    with TestClient(app, follow_redirects=False) as stranger:
        for path in ("/orders", "/static/console.css", "/favicon.ico", "/orders/x/state.json"):
            stranger.get(path)
            stranger.cookies.clear()
    assert len(sessions) == before
    monkeypatch.setattr(console.security, "MAX_SESSIONS", before + 3)
    for _ in range(20):
        with TestClient(app) as stranger:
            stranger.get("/login")
    assert client.get("/orders").status_code == 200


def test_access_log_lines_keep_the_path_and_leave_out_the_query(app: FastAPI) -> None:
    config(app, "127.0.0.1", 0)
    logged: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    keep = Keep()
    access.addHandler(keep)
    try:
        # As uvicorn writes its access lines.
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/orders?q=ada%40example.com",
            "1.1",
            200,
        )
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/orders/o-1", "1.1", 200)
    finally:
        access.removeHandler(keep)
    assert logged == [
        '127.0.0.1:5000 - "GET /orders?(query not logged) HTTP/1.1" 200',
        '127.0.0.1:5000 - "GET /orders/o-1 HTTP/1.1" 200',
    ]


async def test_wrong_passwords_sent_in_parallel_are_still_refused_one_per_delay(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.app, "FAILED_LOGIN_DELAY_S", 0.2)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        page = await browser.get("/login")
        token = hidden(page.text, "csrf_token", "/login")
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                browser.post("/login", data={"csrf_token": token, "password": f"guess{n}"})
                for n in range(5)
            )
        )
        took = time.monotonic() - started
    assert [answer.status_code for answer in answers] == [401] * 5
    assert took >= 5 * 0.2


@pytest.mark.parametrize("host", ["", "  ", "bad\udcffhost"], ids=["empty", "blank", "not_utf8"])
def test_an_empty_or_unusable_host_is_refused_never_every_interface(host: str) -> None:
    # An empty host would bind 0.0.0.0 and [::]: a `--host "$HOST"` with HOST unset.
    with pytest.raises(ConsoleError, match="--host"):
        check_port(host, 8000)


def test_a_form_sent_after_the_session_ended_gets_a_page_leading_back_through_the_login(
    anonymous: TestClient, backend: FakeBackend
) -> None:
    response = anonymous.post(
        "/orders/ord-unpaid/capture",
        data={"nonce": "0" * 32},
        headers={"referer": "http://testserver/orders/ord-unpaid"},
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "Your session has ended" in response.text and "nothing was sent" in response.text
    assert 'href="/login?next=%2Forders%2Ford-unpaid"' in response.text
    assert backend.published == []
    # A page of another site is no place to return to.
    elsewhere = anonymous.post(
        "/orders/ord-unpaid/capture", headers={"referer": "https://evil.example/orders/x"}
    )
    assert 'href="/login?next=%2Forders"' in elsewhere.text


@pytest.mark.parametrize("order_id", ["x.json", "state.json"])
def test_a_logged_out_visit_to_an_order_whose_id_ends_in_json_goes_to_the_login(
    anonymous: TestClient, order_id: str
) -> None:
    response = anonymous.get(f"/orders/{order_id}")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?")
    # The page's own polling still gets its JSON answer.
    polled = anonymous.get(f"/orders/{order_id}/state.json")
    assert polled.status_code == 401 and polled.json() == {"error": "log in first"}
