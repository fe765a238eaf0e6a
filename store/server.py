"""Which server answers on the MongoDB wire, and the write size it can take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import AsyncMongoClient

# FerretDB v1 keeps one SQLite connection open per update statement until the whole command
# ends, from a pool of 100: a command of ~100 updates, or a few concurrent ones, deadlock it.
# Small chunks keep every worker far below that; real MongoDB takes large ones, and so does the
# local stack's FerretDB, patched to release each connection (stack/ferretdb_patches.py).
# Measured on the local stack: 113 us of worker CPU per document in chunks of 12, 19 in 100.
FERRETDB_WRITE_CHUNK = 12
PATCHED_FERRETDB_WRITE_CHUNK = 200
MONGODB_WRITE_CHUNK = 1000
# The version suffix the local stack's patched FerretDB reports.
PATCHED_SUFFIX = "-fulfillment-patched"
# A server that takes connections but does not answer the question is an outage, not a hang.
PROBE_DEADLINE_S = 10.0
# MongoDB's code for a login it refused (wrong user, password or mechanism): not an outage.
AUTHENTICATION_FAILED = 18


@dataclass(frozen=True)
class Server:
    """The store's name and version, and how many writes one bulk command may carry."""

    name: str
    write_chunk: int


async def probe(client: AsyncMongoClient[Any]) -> Server:
    """Ask the server what it is (`buildInfo`); FerretDB says so in its own field."""
    with pymongo.timeout(PROBE_DEADLINE_S):
        info = await client.admin.command("buildInfo")
    if "ferretdbVersion" in info:
        version = str(info["ferretdbVersion"])
        patched = version.endswith(PATCHED_SUFFIX)
        chunk = PATCHED_FERRETDB_WRITE_CHUNK if patched else FERRETDB_WRITE_CHUNK
        return Server(f"FerretDB {version}", chunk)
    return Server(f"MongoDB {info.get('version', '?')}", MONGODB_WRITE_CHUNK)
