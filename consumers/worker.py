"""Running the worker: one process in the foreground, or N supervised processes in one group."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from config import ConfigError, Settings, check_range, environment
from config.kafka_security import KafkaRefused
from consumers import logs
from consumers.app import FAULT_EXIT, Fault, build_app
from consumers.processes import Process, spawn_worker
from consumers.retry import delays
from consumers.sealing import Sealer
from consumers.startup import wait_until_reachable

log = logging.getLogger("fulfillment.worker")
# A child that lived this long was healthy: its next restart starts the backoff over.
STABLE_AFTER = 60.0
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
# How long a stopping worker may take: its batch in hand gets 30 s (the app's graceful
# timeout), then it closes its clients.
STOP_TIMEOUT_S = 45.0
# Young objects the collector lets pile up before it runs (CPython's default is 700), and
# young collections before a middle one (default 10). A batch of 500 records makes tens of
# thousands of objects that live across its awaits on the broker and the store; with the
# defaults they were promoted and forced full collections of the whole heap (18 % of a
# worker's CPU in the bench; 4 % with these).
YOUNG_COLLECTION_THRESHOLD = 50_000
MIDDLE_COLLECTION_THRESHOLD = 50


def metrics_port() -> int | None:
    """FULFILLMENT_METRICS_PORT (default 9400, `off` disables), plus this worker's slot."""
    env = environment()
    port, slot = env.fulfillment_metrics_port, env.fulfillment_worker_slot or 0
    if port is None:
        return None
    return check_range("FULFILLMENT_METRICS_PORT plus the worker slot", port + slot, 1, 65535)


def run_one(settings: Settings) -> None:
    """One worker process until SIGINT/SIGTERM; raises ConfigError before connecting.

    Waits for Kafka and the store first: a worker started before them should not exit.
    """
    sealer = Sealer.from_env()
    port = metrics_port()
    if not wait_until_reachable(settings, port):
        return  # stopped while waiting
    fault = Fault()
    app = build_app(settings, sealer, port, fault)
    tune_garbage_collection()
    # FastStream's run loop wakes every `sleep_time` only to see whether to stop: 10 times a
    # second by default, a few percent of an idle worker's CPU; a stop now waits up to 1 s.
    asyncio.run(app.run(sleep_time=1.0))
    if fault.reason is not None:
        sys.exit(FAULT_EXIT)


def tune_garbage_collection() -> None:
    """Keep the cyclic collector off what lives for the whole run, and off one batch's objects.

    Modules, classes and schemas made at start-up are frozen out of every later collection;
    the higher young threshold lets a batch's objects die before they reach the old generation.
    """
    gc.collect()
    gc.freeze()
    old = gc.get_threshold()[2]
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_THRESHOLD, old)


@dataclass
class RestartBackoff:
    """Delay before restarting one worker slot: doubling to a cap, reset after a healthy run."""

    first: float = FIRST_RESTART_DELAY
    cap: float = MAX_RESTART_DELAY
    stable_after: float = STABLE_AFTER
    _delays: Iterator[float] | None = field(default=None, init=False, repr=False)

    def delay(self, lived: float) -> float:
        """Seconds to wait before restarting a child that died after `lived` seconds."""
        if lived >= self.stable_after or self._delays is None:
            self._delays = delays(self.first, self.cap)
        return next(self._delays)


def run_many(processes: int) -> int:
    """Start `processes` workers in one consumer group; restart any that dies, with backoff
    per slot; stop all on a signal."""
    children: dict[int, Process] = {}
    started: dict[int, float] = {}
    backoffs = {slot: RestartBackoff() for slot in range(processes)}
    # Slots whose child died, with the monotonic time at which to start it again.
    restart_at: dict[int, float] = {}
    stopping = False

    def spawn(slot: int) -> None:
        # A child restarted in its slot keeps its static group membership (see config).
        instance = environment().fulfillment_instance_id or f"{socket.gethostname()}-{os.getpid()}"
        env = {
            **os.environ,
            "FULFILLMENT_WORKER_SLOT": str(slot),
            "FULFILLMENT_INSTANCE_ID": instance,
        }
        children[slot] = spawn_worker(env)
        started[slot] = time.monotonic()

    # The children sent the stop signal: one started while the handler ran gets it later.
    signalled: set[int] = set()
    received = signal.SIGTERM

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping, received
        stopping, received = True, signal.Signals(signum)
        for child in list(children.values()):
            child.send_signal(signum)
            signalled.add(child.pid)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(processes):
        if stopping:
            break
        spawn(slot)
    while not stopping:
        now = time.monotonic()
        for slot, child in list(children.items()):
            code = child.poll()
            if code is None or stopping:
                continue
            if slot not in restart_at:
                lived = now - started[slot]
                delay = backoffs[slot].delay(lived)
                restart_at[slot] = now + delay
                log.warning(
                    "worker %d exited with %s after %.1fs; restarting in %.1fs",
                    slot,
                    code,
                    lived,
                    delay,
                    extra={"worker": slot},
                )
            elif now >= restart_at[slot] and not stopping:
                del restart_at[slot]
                spawn(slot)
        time.sleep(0.2)
    # A slot waiting for its restart has no running child to report on.
    running = [child for slot, child in children.items() if slot not in restart_at]
    for child in running:
        if child.pid not in signalled:
            child.send_signal(received)
    return max((_stopped(child) for child in running), default=0)


def _stopped(child: Process) -> int:
    """The child's exit code once it stopped; killed if it takes longer than a worker may."""
    try:
        return child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("a worker did not stop within %.0fs; killing it", STOP_TIMEOUT_S)
        child.kill()
        return child.wait()


def main() -> None:
    try:
        logs.configure()  # in here: a bad FULFILLMENT_LOG_LEVEL is a ConfigError too
        run_one(Settings.from_env())
    except ConfigError as problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    except KafkaRefused as problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(69)  # EX_UNAVAILABLE, as the CLI


if __name__ == "__main__":
    main()
