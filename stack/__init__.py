"""The local stack: a real Kafka broker and a MongoDB-wire store, started by the project itself."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from config import environment, stack_dir
from stack import ferretdb, kafka
from stack.processes import StackError

__all__ = ["Endpoints", "StackError", "down", "ensure_secret_key", "status", "up"]

Say = Callable[[str], None]
SECRET_KEY_FILE = "secret.key"


@dataclass(frozen=True)
class Endpoints:
    """Where the running stack answers."""

    kafka_bootstrap: str
    mongodb_uri: str


def _external_kafka() -> str | None:
    """KAFKA_BOOTSTRAP_SERVERS: a broker the stack leaves alone; None means the local one."""
    return environment().kafka_bootstrap_servers


def _external_store() -> str | None:
    """MONGODB_URI: a store the stack leaves alone; None means the local FerretDB."""
    return environment().mongodb_uri


def up(say: Say = print, brokers: int | None = None, secure: bool | None = None) -> Endpoints:
    """Start whatever is not running yet (idempotent); external servers are used as they are.

    `brokers` and `secure` choose the Kafka layout; None keeps the one recorded by the last `up`.
    """
    started = time.monotonic()
    bootstrap = _external_kafka()
    if bootstrap:
        say(f"Kafka: external {bootstrap} (KAFKA_BOOTSTRAP_SERVERS), nothing started")
    else:
        recorded = kafka.recorded_layout()
        layout = kafka.Layout(
            brokers if brokers is not None else recorded.brokers,
            secure if secure is not None else recorded.secure,
        )
        bootstrap = kafka.up(say, layout)
        pids = ", ".join(str(pid) for pid in kafka.service().pids())
        say(f"Kafka: ready on {kafka.bootstrap(layout)} (pid {pids})")
    mongodb = _external_store()
    if mongodb:
        say("store: external MONGODB_URI, nothing started")
    else:
        mongodb = ferretdb.up(say)
        say(f"FerretDB: ready on {mongodb} (pid {ferretdb.service().pid()})")
    ensure_secret_key()
    say(f"stack up in {time.monotonic() - started:.1f}s")
    return Endpoints(bootstrap, mongodb)


def down(say: Say = print) -> None:
    """Stop exactly the processes that `up` started, by their recorded pids."""
    for name, svc in (("FerretDB", ferretdb.service()), ("Kafka", kafka.service())):
        say(f"{name}: {'stopped' if svc.stop() else 'was not running'}")


def status() -> list[tuple[str, str, str, str]]:
    """(service, state, address, detail) for each part of the stack: the broker, or each node
    of a cluster (`kafka-1`, `kafka-2`, ...), then the store."""
    external = _external_kafka()
    if external:
        state = "ready" if kafka.is_ready(external) else "not answering"
        rows = [("kafka", state, external, "external")]
    else:
        rows = _kafka_rows()
    external = _external_store()
    if external:
        state = "ready" if ferretdb.is_ready(external) else "not answering"
        rows.append(("store", state, "(MONGODB_URI)", "external"))
    else:
        svc = ferretdb.service()
        rows.append(_row("store", svc.pid(), ferretdb.is_ready, ferretdb.uri(), svc.log_file))
    return rows


def _kafka_rows() -> list[tuple[str, str, str, str]]:
    layout = kafka.recorded_layout()
    rows = []
    for node in kafka.nodes(layout):
        name = "kafka" if layout.brokers == 1 else f"kafka-{node.node_id}"
        svc = node.service()

        def answers(_: str | None, address: str = node.address) -> bool:
            return kafka.broker_count(address) > 0

        name, state, address, detail = _row(name, svc.pid(), answers, node.address, svc.log_file)
        if detail and layout.secure:
            detail += ", SASL_SSL"
        rows.append((name, state, address, detail))
    return rows


def _row(
    name: str, pid: int | None, ready: Callable[[str | None], bool], address: str, log: object
) -> tuple[str, str, str, str]:
    if pid is None:
        return (name, "stopped", address, "")
    state = "ready" if ready(None) else "starting"
    return (name, state, address, f"pid {pid}, log {log}")


def ensure_secret_key() -> str:
    """The local stack's credential-encryption key, generated once per checkout."""
    from cryptography.fernet import Fernet

    path = stack_dir() / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created readable by its owner alone: never a moment with the umask's mode.
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as key_file:
                key_file.write(Fernet.generate_key())
    return path.read_text().strip()
