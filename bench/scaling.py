"""Horizontal scaling: the same workload through 1, 2 and 4 worker processes of one group.

    python -m bench.scaling --orders 3000 --processes 1,2,4 --out bench-results

Runs against whatever the environment points at (`stack up --brokers 3` for the cluster
figures). Each process count gets its own topics and database (bench.run.run_workers): the
workers start on empty topics, the events are loaded, and the clock runs until every
order's fulfillment.completed is out. Besides orders per second it reports the workers' CPU
(user + system, start-up excluded) per input event and orders per CPU-second: on a machine
with fewer cores than processes, throughput stops growing where CPU runs out, while the CPU
cost of an order shows whether more processes waste any.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.data import workload
from bench.run import Say, machine, run_workers
from config import Settings


@dataclass
class Row:
    processes: int
    orders_per_second: float
    seconds: float
    cpu_us_per_event: float
    orders_per_cpu_second: float
    speedup: float  # orders/s against one process
    load_before: float  # the machine's 1-minute load average when the run started


@dataclass
class Scaling:
    started: str
    machine: dict[str, object]
    kafka: str
    orders: int
    events: int
    rows: list[Row] = field(default_factory=list)


async def scaling(base: Settings, orders: int, counts: list[int], say: Say) -> Scaling:
    work = workload(orders, uuid.uuid4().hex[:6])
    report = Scaling(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        kafka=base.kafka_bootstrap,
        orders=orders,
        events=work.messages,
    )
    per_order = work.messages / orders
    for count in counts:
        load = os.getloadavg()[0]
        result = await run_workers(
            base, f"scaling x{count}", "consumers.worker", count, work, say, timeout=1800
        )
        cpu = result.cpu_us_per_event or float("nan")
        first = report.rows[0].orders_per_second if report.rows else result.orders_per_second
        report.rows.append(
            Row(
                processes=count,
                orders_per_second=round(result.orders_per_second, 1),
                seconds=round(result.seconds, 1),
                cpu_us_per_event=round(cpu),
                orders_per_cpu_second=round(1e6 / (cpu * per_order), 1),
                speedup=round(result.orders_per_second / first, 2),
                load_before=round(load, 1),
            )
        )
    return report


def table(report: Scaling) -> str:
    lines = [
        "| worker processes | orders/s | seconds | speed-up | worker CPU per event | orders per CPU-second |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.processes} | {r.orders_per_second:,.0f} | {r.seconds:.1f} | {r.speedup:.2f}x "
        f"| {r.cpu_us_per_event:,.0f} µs | {r.orders_per_cpu_second:,.0f} |"
        for r in report.rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--processes", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    report = asyncio.run(
        scaling(Settings.from_env(), args.orders, counts, lambda line: print(line, flush=True))
    )
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scaling.json"
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(table(report))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
