"""The local stack: a real Kafka broker and a MongoDB-wire store, started by the project itself."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from config import stack_dir
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


def _external(var: str) -> str | None:
    return os.environ.get(var) or None


def up(say: Say = print) -> Endpoints:
    """Start whatever is not running yet (idempotent); external servers are used as they are."""
    started = time.monotonic()
    bootstrap = _external("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        say(f"Kafka: external {bootstrap} (KAFKA_BOOTSTRAP_SERVERS), nothing started")
    else:
        bootstrap = kafka.up(say)
        say(f"Kafka: ready on {bootstrap} (pid {kafka.service().pid()})")
    mongodb = _external("MONGODB_URI")
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
    """(service, state, address, detail) for each part of the stack."""
    rows = []
    for name, svc, address, var, ready in (
        ("kafka", kafka.service(), kafka.bootstrap(), "KAFKA_BOOTSTRAP_SERVERS", kafka.is_ready),
        ("store", ferretdb.service(), ferretdb.uri(), "MONGODB_URI", ferretdb.is_ready),
    ):
        external = _external(var)
        if external:
            state = "ready" if ready(external) else "not answering"
            rows.append((name, state, external if name == "kafka" else "(MONGODB_URI)", "external"))
            continue
        pid = svc.pid()
        if pid is None:
            rows.append((name, "stopped", address, ""))
        else:
            state = "ready" if ready(None) else "starting"
            rows.append((name, state, address, f"pid {pid}, log {svc.log_file}"))
    return rows


def ensure_secret_key() -> str:
    """The local stack's credential-encryption key, generated once per checkout."""
    from cryptography.fernet import Fernet

    path = stack_dir() / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()
