"""FerretDB v1 over SQLite, embedded in a small Go program built once into the shared cache."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from config import cache_dir, environment, stack_dir
from stack import ferretdb_patches
from stack.processes import Service, StackError, require_free_port, run_step, wait_until

HOST = "127.0.0.1"
SOURCE = Path(__file__).parent / "ferretdb"
MODULE = "github.com/FerretDB/FerretDB"
Say = Callable[[str], None]


def port() -> int:
    """FULFILLMENT_MONGODB_PORT."""
    return environment().fulfillment_mongodb_port


def uri() -> str:
    return f"mongodb://{HOST}:{port()}"


def service() -> Service:
    return Service("ferretdb", stack_dir(), marker=str(stack_dir() / "ferretdb" / "data"))


def _module_version() -> str:
    for line in (SOURCE / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] == MODULE:
            return parts[-1]
    raise StackError(f"{SOURCE / 'go.mod'} does not require {MODULE}")


def binary(say: Say) -> Path:
    """The patched FerretDB program, built once per source and patch set into the shared cache."""
    digest = hashlib.sha256(Path(ferretdb_patches.__file__).read_bytes())
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((SOURCE / name).read_bytes())
    target = cache_dir() / f"ferretdb-{digest.hexdigest()[:12]}"
    program = target / "ferretdb-stack"
    if program.exists():
        return program
    if shutil.which("go") is None:
        raise StackError("Go is not installed; it is needed once to build FerretDB")
    say(f"building FerretDB v1 into {target} (first run only, one to two minutes) ...")
    shutil.rmtree(target / "src", ignore_errors=True)
    app = _prepare_sources(target / "src", target / "build.log")
    partial = target / "ferretdb-stack.partial"
    run_step(
        ["go", "build", "-trimpath", "-o", str(partial), "."],
        cwd=app,
        log=target / "build.log",
        what="building FerretDB with Go",
        env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
    )
    partial.rename(program)
    return program


def _prepare_sources(work: Path, log: Path) -> Path:
    """Copy the FerretDB module and our program into `work`, patched; return the program dir."""
    work.mkdir(parents=True)
    listing = work / "module.json"
    run_step(
        ["go", "mod", "download", "-json", f"{MODULE}@{_module_version()}"],
        cwd=SOURCE,
        log=listing,
        what="downloading the FerretDB module",
    )
    module_dir = Path(json.loads(listing.read_text())["Dir"])
    source = work / "ferretdb"
    shutil.copytree(module_dir, source)
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    with log.open("a") as out:
        out.write(f"patched FerretDB: {', '.join(ferretdb_patches.apply(source))}\n")
    app = work / "app"
    app.mkdir()
    for name in ("main.go", "go.mod", "go.sum"):
        shutil.copy(SOURCE / name, app / name)
    with (app / "go.mod").open("a") as go_mod:
        go_mod.write(f"\nreplace {MODULE} => ../ferretdb\n")
    return app


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
    require_free_port(
        HOST,
        port(),
        "FerretDB",
        "set FULFILLMENT_MONGODB_PORT to start one elsewhere, or MONGODB_URI to use that store",
    )
    data = stack_dir() / "ferretdb" / "data"
    data.mkdir(parents=True, exist_ok=True)
    say(f"starting FerretDB on {uri()} ...")
    svc.start([str(program), "-listen", f"{HOST}:{port()}", "-sqlite-dir", str(data)])
    wait_until(is_ready, svc, "FerretDB", timeout=60)
    return uri()
