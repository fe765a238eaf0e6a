"""The console's web application: login, the pages, and actions that publish input events.

It reads the `orders` collection and never writes it. Every action is a contract input event
published with the typed publisher; the page then follows the order's version until the
pipeline's answer is on its timeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pymongo.errors import ConnectionFailure, ExecutionTimeout
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.backend import Backend
from console.forms import new_nonce
from console.paths import SegmentPaths, path_segment
from console.security import (
    COOKIE,
    CSRF_FIELD,
    ContainErrors,
    Flash,
    SecurityHeaders,
    Session,
    Sessions,
    cookie_options,
    transient,
)
from console.views import REFUSALS, distributions, label, money, when
from schemas.limits import MAX_ITEMS, MiB

log = logging.getLogger("console")

HERE = Path(__file__).parent
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})
MAX_SUBMISSIONS = 10_000
# The longest path (in UTF-8 bytes) a login returns to; a longer `next` returns to the orders.
MAX_RETURN_PATH = 2000
# A form's fields at most: a fulfill form has 7 per line, for as many lines as an order has.
MAX_FORM_FIELDS = 8 * MAX_ITEMS
# A form's body at most, refused before it is read (the login form is public): room for a
# fulfill form whose event reaches the input limit, percent-encoded.
MAX_FORM_BYTES = 16 * MiB
# The login form, read before anyone has logged in: a password and the page to return to.
MAX_LOGIN_FORM_BYTES = 64 * 1024
# A wrong password costs this long: guessing gets slow, a typo barely notices.
FAILED_LOGIN_DELAY_S = 1.0


def query_value(value: object) -> str:
    """A query string value, with every reserved character escaped."""
    return quote(str(value), safe="")


templates = Jinja2Templates(directory=HERE / "templates")
# `u` for an id in a path, `q` for a value in a query string.
templates.env.filters["u"] = path_segment
templates.env.filters["q"] = query_value
templates.env.filters["when"] = when
templates.env.filters["label"] = label
templates.env.filters["money"] = money
templates.env.globals["new_nonce"] = new_nonce
templates.env.globals["distributions"] = distributions
templates.env.globals["refusals"] = REFUSALS


# Unreachable, or not answering in time: an outage of the store, not a defect of ours.
STORE_OUTAGES = (ConnectionFailure, ExecutionTimeout)


class Submissions:
    """The sends of forms, by nonce, done or under way: a form is sent once, and the same form
    sent again while its first send is under way (a browser or proxy retrying the POST) waits
    for that send's outcome instead of claiming it went out."""

    def __init__(self) -> None:
        self._sends: OrderedDict[str, asyncio.Future[str | None]] = OrderedDict()

    def start(self, nonce: str) -> tuple[asyncio.Future[str | None], bool]:
        """The send of this form, and whether it is new: the caller of a new one sends it,
        then calls `finish` with it; a repeat waits for its outcome (`outcome_of`): None once
        sent, else why it was not."""
        earlier = self._sends.get(nonce)
        if earlier is not None:
            return earlier, False
        send: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._sends[nonce] = send
        while len(self._sends) > MAX_SUBMISSIONS:
            self._sends.popitem(last=False)
        return send, True

    def finish(self, nonce: str, send: asyncio.Future[str | None], problem: str | None) -> None:
        """The send's outcome: None if sent, else why not; a form not sent may be sent again.
        Given the send itself: one forgotten meanwhile still tells those waiting for it."""
        if not send.done():
            send.set_result(problem)
        if problem is not None and self._sends.get(nonce) is send:
            del self._sends[nonce]


async def outcome_of(send: asyncio.Future[str | None]) -> str | None:
    """The outcome of a send under way, waited for without cancelling it if this request ends."""
    return await asyncio.shield(send)


@dataclass
class Console:
    """What every request handler shares."""

    backend: Backend
    password: str
    secure_cookies: bool | None = None
    sessions: Sessions = field(default_factory=Sessions)
    submissions: Submissions = field(default_factory=Submissions)
    # Password checks take turns, and a wrong one holds the turn for its delay: guesses sent
    # in parallel still come one per FAILED_LOGIN_DELAY_S, whatever the number of connections.
    login_turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class CsrfRefused(Exception):
    """A form without this session's CSRF token."""


def state(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def session(request: Request) -> Session:
    current: Session = request.state.session
    return current


def flash(request: Request, message: Flash) -> None:
    session(request).flashes.append(message)


def _take_flashes(request: Request, order_id: str | None) -> list[Flash]:
    """The notifications for this page: those of this order, or those of no order."""
    own = session(request)
    mine = [f for f in own.flashes if f.order_id == order_id or f.order_id is None]
    own.flashes = [f for f in own.flashes if f not in mine]
    return mine


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    order_id: str | None = None,
    notices: bool = True,
    **context: Any,
) -> HTMLResponse:
    """A page with what every template needs: the session's CSRF token and notifications
    (a fragment takes none: they belong to the page the browser shows next)."""
    current = session(request)
    context.setdefault("nonce", new_nonce())
    return templates.TemplateResponse(
        request,
        template,
        {
            "csrf": current.csrf,
            "authenticated": current.authenticated,
            "flashes": _take_flashes(request, order_id)
            if current.authenticated and notices
            else [],
            **context,
        },
        status_code=status_code,
    )


def error_page(
    request: Request,
    status_code: int,
    heading: str,
    message: str,
    back: str = "/orders",
    back_label: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code,
        heading=heading,
        message=message,
        back=back,
        back_label=back_label,
    )


async def checked_form(request: Request, limit: int | None = None) -> FormData:
    """The submitted form, once its CSRF token is this session's; one larger than `limit`
    bytes (`MAX_FORM_BYTES` unless given) is refused unread."""
    limit = limit or MAX_FORM_BYTES
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise StarletteHTTPException(411, "A form must say how long it is.")
    if int(length) > limit:
        size = f"{limit // MiB} MiB" if limit >= MiB else f"{limit // 1024} KiB"
        raise StarletteHTTPException(413, f"The form is larger than the console takes ({size}).")
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str) or not session(request).csrf_ok(token):
        raise CsrfRefused()
    return form


def redirect(path: str) -> RedirectResponse:
    """See-other after a POST: reloading the result page never sends the form again."""
    return RedirectResponse(path, status_code=303)


def local_path(candidate: str) -> str:
    """Where to go after logging in: a path on this console only (no open redirect), and of
    a length a browser keeps (no 100 kB `Location` header)."""
    if (
        candidate.startswith("/")
        and not candidate.startswith("//")
        and "\\" not in candidate
        and len(candidate.encode()) <= MAX_RETURN_PATH
    ):
        return candidate
    return "/orders"


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def secure_request(request: Request) -> bool:
    """Whether cookies go out with Secure: as configured, else when reached over https."""
    configured = state(request).secure_cookies
    return request.url.scheme == "https" if configured is None else configured


async def authenticate(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every request gets a session; every page but the login page needs a logged-in one."""
    console = state(request)
    cookie = request.cookies.get(COOKIE)
    request.state.session = console.sessions.get(cookie) or transient()
    if _is_public(request.url.path) or session(request).authenticated:
        response = await call_next(request)
    elif request.method == "GET" and not _is_polled(request):
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = redirect(f"/login?{urlencode({'next': wanted})}")
    else:
        response = _logged_out(request)
    # The handler may have replaced the session (login, logout): the cookie follows it.
    current = session(request)
    if current.token and current.token != cookie:
        response.set_cookie(COOKIE, current.token, **cookie_options(secure_request(request)))
    return response


def _is_polled(request: Request) -> bool:
    """The order page's script polls the order's state; a person opens every other path
    (an order whose id ends in ".json" too)."""
    parts = request.url.path.split("/")  # "", "orders", the order's id, "state.json"
    return len(parts) == 4 and parts[1] == "orders" and parts[3] == "state.json"


def _logged_out(request: Request) -> Response:
    """A form sent (or a state polled) without a logged-in session: 401, and for a person a
    page that says so and leads back, through the login, to the page the form was on."""
    if _is_polled(request):
        return JSONResponse({"error": "log in first"}, status_code=401)
    referer = urlsplit(request.headers.get("referer", ""))
    same_site = referer.netloc == request.url.netloc and referer.scheme == request.url.scheme
    page = (
        local_path(referer.path + (f"?{referer.query}" if referer.query else ""))
        if same_site
        else "/orders"
    )
    return error_page(
        request,
        401,
        "Your session has ended",
        "You were logged out (the console restarted, or the session timed out), so nothing "
        "was sent. Log in again, then send the form once more.",
        back=f"/login?{urlencode({'next': page})}",
        back_label="Log in again",
    )


async def _csrf_refused(request: Request, _: Exception) -> Response:
    return error_page(
        request,
        403,
        "This form has expired",
        "The form did not carry this session's security token (it may be from before you "
        "logged in again, or from another site). Nothing was sent. Go back, reload the page "
        "and try again.",
    )


async def _invalid_request(request: Request, _: Exception) -> Response:
    # FastAPI's default answer quotes the input, which could be a credential.
    return error_page(request, 400, "Bad request", "The request could not be read.")


async def _http_error(request: Request, problem: Exception) -> Response:
    assert isinstance(problem, StarletteHTTPException)
    if problem.status_code == 404:
        return error_page(request, 404, "Not found", "There is no such page.")
    page = error_page(request, problem.status_code, "Request refused", str(problem.detail))
    # A 405 says which methods the path takes (`Allow`), as HTTP requires.
    page.headers.update(problem.headers or {})
    return page


def store_away_page(
    request: Request,
    problem: Exception,
    advice: str = "Try again in a moment; if it persists, check that the store is running.",
    back: str = "/orders",
    back_label: str | None = None,
) -> HTMLResponse:
    """The page for a store outage, and its one log line (not a traceback per request)."""
    log.warning("the order store did not answer (%s)", type(problem).__name__)
    return error_page(
        request,
        503,
        "The order store is not answering",
        f"The console cannot reach the order store (MongoDB) right now. Nothing was sent. {advice}",
        back,
        back_label,
    )


async def _store_unavailable(request: Request, problem: Exception) -> Response:
    return store_away_page(request, problem)


def create_app(backend: Backend, password: str, secure_cookies: bool | None = None) -> FastAPI:
    """The console for `backend`, with one operator password."""
    from console import letters, pages

    app = FastAPI(title="Fulfillment console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = Console(backend, password, secure_cookies)
    app.middleware("http")(authenticate)
    app.add_middleware(ContainErrors)
    app.add_middleware(SecurityHeaders)
    # Outermost: every other part sees the path the routes match.
    app.add_middleware(SegmentPaths)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for outage in STORE_OUTAGES:
        app.add_exception_handler(outage, _store_unavailable)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.auth)
    app.include_router(letters.router)
    app.include_router(pages.router)
    return app


async def slow_down() -> None:
    await asyncio.sleep(FAILED_LOGIN_DELAY_S)
