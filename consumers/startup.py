"""Start-up waits until Kafka and the store answer, with capped backoff, instead of exiting."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace

import pymongo
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from config import ConfigError, Settings
from config.kafka_security import KafkaRefused, refusal
from consumers.health import HealthServer
from consumers.retry import delays
from store.orders import connect
from store.server import AUTHENTICATION_FAILED

log = logging.getLogger("fulfillment.startup")
FIRST_DELAY = 0.5
MAX_DELAY = 10.0
# One probe must not take longer than the longest wait between probes.
PROBE_TIMEOUT_MS = 3000


def reason(problem: BaseException) -> str:
    """A network failure in one short line: its type, then what it says, without the noise."""
    name = type(problem).__name__
    # aiokafka's errors already start with their type name; pymongo's append every timeout.
    text = str(problem).strip().removeprefix(name).removeprefix(":").strip()
    if isinstance(problem, KafkaConnectionError) and text.startswith("Unable to bootstrap"):
        text = "no broker answered"
    first = text.splitlines()[0] if text else ""
    for noise in (" (configured timeouts", ", Topology Description"):
        first = first.split(noise)[0]
    return f"{name}: {first[:160]}" if first else name


async def kafka_problem(settings: Settings) -> str | None:
    """None when the broker answers a metadata request, else why not, naming it."""
    why = await kafka_unreachable(settings)
    return f"kafka at {settings.kafka_bootstrap}: {why}" if why else None


async def kafka_unreachable(settings: Settings) -> str | None:
    """None when the broker answers a metadata request, else the failure in one short line."""
    options = replace(settings, kafka_request_timeout_ms=PROBE_TIMEOUT_MS).kafka_options()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **options)
    try:
        await admin.start()  # bootstrapping is a metadata request
        return None
    except Exception as problem:
        refused = await refusal(settings.kafka_bootstrap, settings.kafka_security)
        if refused:
            raise KafkaRefused(refused) from None  # a wrong password is not waited out
        return reason(problem)
    finally:
        await admin.close()


def store_refusal(problem: OperationFailure) -> str | None:
    """Why the store refused our login, in one line; None for any other failure."""
    if problem.code != AUTHENTICATION_FAILED:
        return None
    return f"the store refused the credentials in MONGODB_URI: {reason(problem)}"


async def store_problem(settings: Settings) -> str | None:
    """None when the store answers `ping`, else why not, naming it."""
    why = await store_unreachable(settings)
    return f"store: {why}" if why else None


async def store_unreachable(settings: Settings) -> str | None:
    """None when the store answers `ping`, else the failure in one short line."""
    try:
        client = connect(
            settings.mongodb_uri,
            serverSelectionTimeoutMS=PROBE_TIMEOUT_MS,
            connectTimeoutMS=PROBE_TIMEOUT_MS,
        )
    except ConfigurationError as problem:
        raise ConfigError(f"MONGODB_URI is not usable: {reason(problem)}") from None
    try:
        # A server that takes connections but never answers the ping counts as away.
        with pymongo.timeout(PROBE_TIMEOUT_MS / 1000):
            await client.admin.command("ping")
        return None
    except OperationFailure as problem:
        refused = store_refusal(problem)
        if refused:
            raise ConfigError(refused) from None  # waiting cannot help: exit 2, as the CLI
        return reason(problem)
    except PyMongoError as problem:
        return reason(problem)
    finally:
        await client.close()


async def wait_for_services(settings: Settings, stop: asyncio.Event | None = None) -> bool:
    """Probe both until they answer (True), logging each failed attempt; False if `stop` is set."""
    stop = stop or asyncio.Event()
    # 0.5, 1, 2, 4, 8, 10, 10, ... seconds between attempts.
    for attempt, delay in enumerate(delays(FIRST_DELAY, MAX_DELAY), start=1):
        problems = [
            p for p in await asyncio.gather(kafka_problem(settings), store_problem(settings)) if p
        ]
        if not problems:
            if attempt > 1:
                log.info("kafka and store answer after %d attempts; starting", attempt)
            return True
        log.warning(
            "waiting for %s (attempt %d, next in %.1fs)", "; ".join(problems), attempt, delay
        )
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return False
        except TimeoutError:
            pass
    return False  # unreachable: delays() never ends


async def _not_ready() -> str:
    return "waiting for kafka and the store"


async def _wait_interruptibly(settings: Settings, health_port: int | None) -> bool:
    """wait_for_services, ended cleanly by SIGTERM or SIGINT (a supervisor stopping us)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # /healthz answers while we wait, so an orchestrator does not kill a worker that is fine.
    health = HealthServer(health_port, _not_ready, announce=False) if health_port else None
    if health is not None:
        await health.start()
    try:
        return await wait_for_services(settings, stop)
    finally:
        if health is not None:
            await health.stop()  # the app serves the port from here on
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def wait_until_reachable(settings: Settings, health_port: int | None = None) -> bool:
    """Block until Kafka and the store answer (True) or a stop signal arrives (False)."""
    return asyncio.run(_wait_interruptibly(settings, health_port))
