"""`fulfillment soak`: steady load for a while; worker memory and the outbox backlog must stay flat."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.run import Arrivals, Lab
from chaos.run import Plan, Say, Workers, _send, build_stream
from config import Settings
from consumers.topics import ensure_topics
from schemas.names import Topic
from store.orders import connect


@dataclass
class SoakReport:
    minutes: float
    rate: float
    orders: int
    completed: int
    samples: list[dict[str, float]] = field(default_factory=list)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def soak(base: Settings, minutes: float, rate: float, logs: Path, say: Say) -> SoakReport:
    lab = Lab(base, "soak")
    logs.mkdir(parents=True, exist_ok=True)
    await ensure_topics(lab.settings)
    orders = int(minutes * 60 * rate)
    plan = Plan(orders=orders, duplicate_rate=0.0, malformed_rate=0.0, rate=rate)
    stream, *_ = build_stream(plan, lab.settings.group_id[-6:])
    workers = Workers(lab, 2, logs)
    arrivals = Arrivals(lab.settings, lab.settings.topic(Topic.FULFILLMENTS_COMPLETED), "soak")
    await arrivals.start()
    client = connect(lab.settings.mongodb_uri)
    pending = client[lab.settings.database]["outbox_pending"]
    report = SoakReport(minutes, rate, orders, 0)
    sending = asyncio.create_task(_send(lab.settings, stream, rate, plan))
    reading = asyncio.create_task(arrivals.until(orders, timeout=minutes * 60 + 600))
    started = time.monotonic()
    try:
        while not sending.done():
            await asyncio.sleep(min(10.0, max(1.0, minutes * 6)))
            sample = {
                "t": round(time.monotonic() - started, 1),
                "completed": len(arrivals.first_seen),
                "outbox_pending": await pending.count_documents({}),
                **{
                    f"worker{i}_rss_mib": round(rss_mib(p.pid), 1)
                    for i, p in enumerate(workers.processes)
                },
            }
            report.samples.append(sample)
            say(" ".join(f"{k}={v}" for k, v in sample.items()))
        await sending
        await reading
        report.completed = len(arrivals.first_seen)
    finally:
        workers.stop()
        await arrivals.stop()
        await client.close()
        await lab.cleanup()
    return report
