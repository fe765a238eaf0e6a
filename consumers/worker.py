"""Running the worker: one process in the foreground, or N supervised processes in one group."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time

from config import ConfigError, Settings, check_range
from consumers import logs
from consumers.app import build_app
from consumers.sealing import Sealer

log = logging.getLogger("fulfillment.worker")


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 40) -> None:
    """SIGTERM every worker, wait for the batch in hand to finish, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def metrics_port() -> int | None:
    """FULFILLMENT_METRICS_PORT (default 9400, `off` disables), plus this worker's slot."""
    raw = os.environ.get("FULFILLMENT_METRICS_PORT", "9400").strip().lower()
    if raw in ("off", "", "0"):
        return None
    if not raw.isdigit():
        raise ConfigError(f"FULFILLMENT_METRICS_PORT must be a port number or off, not {raw!r}")
    port = check_range("FULFILLMENT_METRICS_PORT", int(raw), 1, 65535)
    slot = os.environ.get("FULFILLMENT_WORKER_SLOT", "0")
    return check_range("FULFILLMENT_METRICS_PORT plus the worker slot", port + int(slot), 1, 65535)


def run_one(settings: Settings) -> None:
    """One worker process until SIGINT/SIGTERM; raises ConfigError before connecting."""
    sealer = Sealer.from_env()
    app = build_app(settings, sealer, metrics_port())
    asyncio.run(app.run())


def run_many(processes: int) -> int:
    """Start `processes` workers in one consumer group; restart any that dies; stop all on a signal."""
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def spawn(slot: int) -> None:
        env = {**os.environ, "FULFILLMENT_WORKER_SLOT": str(slot)}
        children[slot] = subprocess.Popen([sys.executable, "-m", "consumers.worker"], env=env)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(processes):
        spawn(slot)
    while not stopping:
        for slot, child in list(children.items()):
            code = child.poll()
            if code is not None and not stopping:
                log.warning("worker %d exited with %s; restarting", slot, code)
                spawn(slot)
        time.sleep(0.5)
    return max((child.wait() for child in children.values()), default=0)


def main() -> None:
    logs.configure()
    try:
        run_one(Settings.from_env())
    except ConfigError as problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
