"""Ids in the console's URLs: any text, `/` included, is one path segment.

The server hands the router a decoded path, in which the page of an order whose id is
"a/cancel" (`/orders/a%2Fcancel`) would read as the cancel page of order "a". So the router
gets the path decoded except for `%2F` and `%25`, an id stays one segment, and the `id`
convertor decodes those two in the id itself.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

# A slash or a percent sign inside a segment, as a page writes it (`url_part`).
_KEPT = re.compile(r"(%2[fF]|%25)")


class IdConvertor(Convertor[str]):
    """`{name:id}`: one segment, decoded."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


def segment_path(raw_path: bytes) -> str:
    """The path decoded, but for an escaped `/` or `%`, written `%2F` and `%25`."""
    parts = _KEPT.split(raw_path.decode("ascii", "replace"))
    return "".join(part.upper() if _KEPT.fullmatch(part) else unquote(part) for part in parts)


class SegmentPaths:
    """Route on `segment_path` of what the browser sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path")
        if scope["type"] == "http" and raw_path:
            scope = {**scope, "path": segment_path(raw_path.split(b"?", 1)[0])}
        await self.app(scope, receive, send)


register_url_convertor("id", IdConvertor())
