"""A tiny HTTP endpoint beside the worker: /metrics (Prometheus), /healthz, /readyz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("fulfillment.health")
ReadyCheck = Callable[[], Awaitable[str | None]]


class HealthServer:
    """Serves the three paths; `ready` returns None when ready, else why not."""

    def __init__(
        self, port: int, ready: ReadyCheck, host: str = "0.0.0.0", announce: bool = True
    ) -> None:
        """`announce`: log where it serves (once per process: the start-up wait's server
        hands the port over to the app's, which says it)."""
        self.port = port
        self.host = host
        self.ready = ready
        self.announce = announce
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as problem:
            log.warning("metrics endpoint not started on port %d: %s", self.port, problem.strerror)
            return
        if self.announce:
            log.info(
                "metrics and health on http://%s:%d/metrics /healthz /readyz", self.host, self.port
            )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode(errors="replace").split()
            path = parts[1] if len(parts) > 1 else "/"
            status, content_type, body = await self._route(path)
            head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        if path == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if path == "/readyz":
            problem = await self.ready()
            if problem is None:
                return "200 OK", "text/plain", b"ready\n"
            return "503 Service Unavailable", "text/plain", f"not ready: {problem}\n".encode()
        return "404 Not Found", "text/plain", b"try /metrics, /healthz or /readyz\n"
