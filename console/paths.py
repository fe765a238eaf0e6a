"""Ids in the console's URLs: any text, `/` included, is one path segment.

The server hands the router a decoded path, in which the page of an order whose id is
"a/cancel" (`/orders/a%2Fcancel`) would read as the cancel page of order "a". So the router
gets the path decoded except for `%2F`, `%25` and `%7E`, an id stays one segment, and the
`id` convertor decodes those in the id itself. A browser resolves a segment `.` or `..`
before it sends the request (an order `x` with a fulfillment `..` would link to x's own
cancel page): `path_segment` marks those with a `~`, which the convertor takes off.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

# A slash, a percent sign or a tilde inside a segment, as `path_segment` writes them.
_KEPT = re.compile(r"(%2[fF]|%25|%7[eE])")
# Marks a segment a browser would otherwise resolve as "." or "..".
_DOTS_MARK = "~"


def path_segment(value: object) -> str:
    """`value` as one path segment of a console URL, read back whole by the `id` convertor."""
    segment = quote(str(value), safe="").replace("~", "%7E")
    return _DOTS_MARK + segment if segment in (".", "..") else segment


class IdConvertor(Convertor[str]):
    """`{name:id}`: one segment, decoded."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value.removeprefix(_DOTS_MARK))

    def to_string(self, value: str) -> str:
        return path_segment(value)


def segment_path(raw_path: bytes) -> str:
    """The path decoded, but for an escaped `/`, `%` or `~`, written `%2F`, `%25`, `%7E`."""
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
