"""FerretDB v1 over SQLite, embedded in a small Go program built once into the shared cache."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from config import cache_dir, stack_dir
from stack.processes import Service, StackError, require_free_port, run_step, wait_until

HOST = "127.0.0.1"
SOURCE = Path(__file__).parent / "ferretdb"
Say = Callable[[str], None]


def port() -> int:
    return int(os.environ.get("FULFILLMENT_MONGODB_PORT", "27017"))


def uri() -> str:
    return f"mongodb://{HOST}:{port()}"


def service() -> Service:
    return Service("ferretdb", stack_dir(), marker=str(stack_dir() / "ferretdb" / "data"))


def binary(say: Say) -> Path:
    """The FerretDB program, built once per source version into the shared cache."""
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((SOURCE / name).read_bytes())
    target = cache_dir() / f"ferretdb-{digest.hexdigest()[:12]}"
    program = target / "ferretdb-stack"
    if program.exists():
        return program
    if shutil.which("go") is None:
        raise StackError("Go is not installed; it is needed once to build FerretDB")
    say(f"building FerretDB v1 into {target} (first run only, about a minute) ...")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "ferretdb-stack.partial"
    run_step(
        ["go", "build", "-trimpath", "-o", str(partial), "."],
        cwd=SOURCE,
        log=target / "build.log",
        what="building FerretDB with Go",
        env={"CGO_ENABLED": "0"},
    )
    partial.rename(program)
    return program


def is_ready(address: str | None = None) -> bool:
    """True when the store answers `ping`."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, object]] = MongoClient(
        address or uri(), serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def up(say: Say) -> str:
    """Start the store unless ours already runs; return its URI."""
    svc = service()
    if svc.pid() is not None:
        wait_until(is_ready, svc, "FerretDB", timeout=60)
        return uri()
    program = binary(say)
    require_free_port(HOST, port(), "FerretDB")
    data = stack_dir() / "ferretdb" / "data"
    data.mkdir(parents=True, exist_ok=True)
    say(f"starting FerretDB on {uri()} ...")
    svc.start([str(program), "-listen", f"{HOST}:{port()}", "-sqlite-dir", str(data)])
    wait_until(is_ready, svc, "FerretDB", timeout=60)
    return uri()
