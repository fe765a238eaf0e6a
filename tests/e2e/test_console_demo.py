"""`fulfillment demo --console`: one command from the stack to a populated console."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.e2e.harness import Harness, bounded
from tests.proxies import free_port

pytestmark = pytest.mark.e2e
FULFILLMENT = str(Path(sys.executable).parent / "fulfillment")


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(
                f"the demo ended before printing {text!r}:\n{''.join(seen)[-3000:]}"
            )
        line = raw.decode(errors="replace")
        seen.append(line)
        if text in line:
            return line


@bounded(420)
async def test_demo_with_console_serves_the_demo_orders_and_says_how_to_log_in(
    harness: Harness,
) -> None:
    port = free_port()  # --port: 8000 may be taken on this machine
    url = f"http://127.0.0.1:{port}"
    env = harness.worker_env() | {"COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("FULFILLMENT_CONSOLE_PASSWORD", None)
    demo = await asyncio.create_subprocess_exec(
        FULFILLMENT,
        "demo",
        "--workers",
        "1",
        "--console",
        "--port",
        str(port),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert demo.stdout is not None
    seen: list[str] = []
    try:
        await _line_with(demo.stdout, "Summary", seen)
        await _line_with(demo.stdout, f"console: {url}/", seen)
        login = await _line_with(demo.stdout, "log in with this password", seen)
        password = login.rsplit(": ", 1)[1].strip()
        async with httpx2.AsyncClient(base_url=url) as browser:
            async with asyncio.timeout(30):
                while True:
                    try:
                        page = await browser.get("/login")
                        break
                    except httpx2.TransportError:
                        await asyncio.sleep(0.2)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            answer = await browser.post(
                "/login", data={"csrf_token": token.group(1), "password": password}
            )
            assert answer.status_code == 303
            orders = await browser.get("/orders")
            total = re.search(r"(\d+) orders", orders.text)
            assert total is not None and int(total.group(1)) >= 50, orders.text[:2000]
            assert "fulfilled" in orders.text
    finally:
        if demo.returncode is None:
            os.killpg(demo.pid, signal.SIGINT)
            rest, _ = await asyncio.wait_for(demo.communicate(), 60)
            seen.append(rest.decode(errors="replace"))
    output = "".join(seen)
    assert demo.returncode in (0, 130), output[-3000:]
    assert "stopped 1 workers" in output
