"""Login, server-side sessions, CSRF tokens, security headers and errors that reveal nothing.

Sessions live in the console's memory: the cookie is a random token and carries no data, so
logging out or restarting the console ends every session, and nothing can be forged.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import environment

PASSWORD_VARIABLE = "FULFILLMENT_CONSOLE_PASSWORD"
COOKIE = "fulfillment_console"
CSRF_FIELD = "csrf_token"
# An operator's session ends after this long without a request.
IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000
log = logging.getLogger("console")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # The console's own pages only: a form sent after the session ended leads back to its page
    # (`_logged_out`); no other site learns which order an operator was on.
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}


def console_password() -> tuple[str, bool]:
    """The login password from the environment, or a new random one; True when generated."""
    configured = environment().fulfillment_console_password
    if configured:
        return configured.get_secret_value(), False
    return secrets.token_urlsafe(12), True


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the time taken tells nothing about the password."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Flash:
    """A notification for the next page: what was sent, and which event to follow."""

    text: str
    level: str = "info"
    order_id: str | None = None
    event_id: str | None = None


@dataclass
class Session:
    """One browser's session: anonymous until the password is given."""

    token: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    authenticated: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    flashes: list[Flash] = field(default_factory=list)
    # A Manual Fulfillment form the store could not take, by order id, without credentials:
    # the next opening of that form shows it again.
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)

    def csrf_ok(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    """Sessions by cookie token, oldest dropped first beyond `MAX_SESSIONS`."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if time.monotonic() - session.last_seen > IDLE_SECONDS:
            del self._sessions[token]
            return None
        session.last_seen = time.monotonic()
        self._sessions.move_to_end(token)
        return session

    def new(self, authenticated: bool = False) -> Session:
        session = Session(token=secrets.token_urlsafe(32), authenticated=authenticated)
        self._sessions[session.token] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._evict()
        return session

    def _evict(self) -> None:
        """Drop the least recently used anonymous session; only if none, the oldest of all.
        So visits to the login page cannot push logged-in operators out."""
        anonymous = next((t for t, s in self._sessions.items() if not s.authenticated), None)
        if anonymous is not None:
            del self._sessions[anonymous]
        else:
            self._sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)

    def end(self, session: Session) -> None:
        self._sessions.pop(session.token, None)


def transient() -> Session:
    """A session that is not kept: a request without one needs no memory until it logs in."""
    return Session(token="")


def cookie_options(secure: bool) -> dict[str, Any]:
    """HttpOnly and SameSite=Lax always; Secure when the console is reached over https.

    Lax, not Strict: a link to an order followed from a ticket or a chat must find the operator
    logged in; with Strict it came without the cookie, and the login page's new session then
    replaced the operator's. Cross-site posts still come without it (and without a token)."""
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}


class SecurityHeaders:
    """Adds the security headers to every response, and no-store to every page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if not static:
                    # Pages hold customers' data and forms that take credentials: keep no copy.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


ERROR_PAGE = (
    b"<!doctype html><title>Error</title><h1>Something went wrong</h1>"
    b"<p>The console could not complete this request. Nothing was sent. "
    b'<a href="/orders">Back to the orders</a></p>'
)


class ContainErrors:
    """An unexpected error becomes a plain 500 page; the log names its type and where, never
    its message, which could quote what was submitted (a credential in a validation error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as problem:
            frames = "".join(traceback.format_tb(problem.__traceback__))
            log.error(
                "error in %s %s: %s (message withheld)\n%s",
                scope.get("method"),
                scope.get("path"),
                type(problem).__name__,
                frames,
            )
            if started:
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": ERROR_PAGE})
