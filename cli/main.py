"""Entry point of the `fulfillment` command: sub-commands for operators and integrators."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Protocol

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

import stack
from cli.common import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    console,
    error_line,
    errors,
    fail,
    failing_in_one_line,
    quiet_client_logs,
)
from cli.messages import dlq_app, publish, topics_app
from cli.orders import order_app, orders_app
from config import ConfigError, Settings, environment
from config.environment import is_text
from config.kafka_security import KafkaRefused, refusal

# Typer's click (a copy of its own in recent Typer): its usage errors, reached through a
# public class since the module's path is Typer's to change.
_CLICK = importlib.import_module(typer.BadParameter.__module__)
# Click 8.2 and later; before, a bare command shows its help and exits on its own.
_NO_ARGS_IS_HELP: Any = getattr(_CLICK, "NoArgsIsHelpError", ())
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
stack_app = typer.Typer(
    no_args_is_help=True, help="Start, stop and show the local Kafka broker and store."
)
app.add_typer(stack_app, name="stack")
app.add_typer(order_app, name="order")
app.add_typer(orders_app, name="orders")
app.add_typer(dlq_app, name="dlq")
app.add_typer(topics_app, name="topics")
app.command("publish")(publish)


def times(value: float | None) -> str:
    """A ratio as "12.3x"; "n/a" when the run was too small to measure its divisor."""
    return "n/a" if value is None else f"{value:.1f}x"


def say(message: str) -> None:
    console.print(Text.assemble(("stack:", "dim"), " ", message))


@stack_app.command("up")
def stack_up(
    brokers: int | None = typer.Option(
        None,
        "--brokers",
        min=1,
        help="Kafka nodes (KRaft, each broker and controller); 3 for a cluster. Default: as last started, else 1.",
    ),
    secure: bool | None = typer.Option(
        None,
        "--secure/--plaintext",
        help="SASL_SSL (SCRAM-SHA-512 over TLS) listeners; clients then need the settings in the printed file.",
    ),
) -> None:
    """Start the local stack (idempotent); build it on first use."""
    stack.up(say, brokers=brokers, secure=secure)


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `stack up` started."""
    stack.down(say)


@stack_app.command("status")
def stack_status() -> None:
    """Show what runs where."""
    table = Table("service", "state", "address", "detail")
    for row in stack.status():
        table.add_row(*row)
    console.print(table)


@app.command()
def worker(
    processes: int = typer.Option(
        1, "--processes", "-p", min=1, help="Worker processes in one consumer group."
    ),
) -> None:
    """Run the consumers in the foreground; creates missing topics first."""
    from consumers import logs
    from consumers.sealing import Sealer
    from consumers.worker import metrics_port, run_many, run_one

    try:
        logs.configure()  # in here: a bad FULFILLMENT_LOG_LEVEL is a ConfigError too
        settings = Settings.from_env()
        Sealer.from_env()
        # Checked here too: a child failing on its configuration would only be restarted.
        metrics_port()
        # Checked here too: children refused by Kafka would only be restarted.
        refused = asyncio.run(refusal(settings.kafka_bootstrap, settings.kafka_security))
        if refused:
            raise KafkaRefused(refused)
        if processes == 1:
            run_one(settings)
        else:
            raise typer.Exit(run_many(processes))
    except ConfigError as problem:
        fail(str(problem), EXIT_USAGE)
    except KafkaRefused as problem:
        fail(str(problem), EXIT_UNAVAILABLE)


contracts_app = typer.Typer(
    no_args_is_help=True, help="The published AsyncAPI document and JSON Schemas."
)
app.add_typer(contracts_app, name="contracts")


@contracts_app.command("write")
def contracts_write() -> None:
    """Regenerate contracts/asyncapi.json and contracts/json-schema/*.json from the code."""
    from tools.contracts import write

    for path in write():
        console.print(f"wrote {path}", highlight=False)


def results_folder(out: str, report: str | None = None, logs: str | None = None) -> Path:
    """`out` and its `logs` folder, made if needed, where `report` can be written: checked
    before a long run, whose results would otherwise be lost at its end."""
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if logs:
            (folder / logs).mkdir(exist_ok=True)
    except OSError as problem:
        fail(f"--out {out} cannot be a folder for the results: {problem.strerror}", EXIT_USAGE)
    if report and (folder / report).is_dir():
        fail(f"--out {out} holds a folder named {report}, where the report goes", EXIT_USAGE)
    if not os.access(folder, os.W_OK):
        fail(f"--out {out} cannot be a folder for the results: not writable", EXIT_USAGE)
    return folder


def write_results(path: Path, text: str) -> None:
    """Write a run's report, or say in one line why it could not be (the run's verdict was
    printed already)."""
    try:
        path.write_text(text)
    except OSError as problem:
        fail(f"cannot write {path}: {problem.strerror}")
    console.print(f"wrote {path}", highlight=False)


@app.command("bench")
def bench_command(
    orders: int = typer.Option(
        20_000, "--orders", min=10, help="Orders in the throughput runs (3 events each)."
    ),
    paced_orders: int = typer.Option(
        5_000, "--paced-orders", min=10, help="Orders in the paced latency run."
    ),
    out: str = typer.Option(
        "bench-results", "--out", help="Folder for the JSON result and the PNG chart."
    ),
    timeout: float = typer.Option(
        900, "--timeout", min=1, help="Seconds a variant may take before the run fails."
    ),
) -> None:
    """Throughput and latency: ceilings, the naive peer and our pipeline, on one stack in one run."""
    import logging
    import math

    from bench.run import GroupNotStable, VariantTooSlow, bench, write
    from cli.common import run

    if not math.isfinite(timeout):
        fail(f"--timeout must be a number of seconds, not {timeout}", EXIT_USAGE)
    results_folder(out)
    # New topics answer NotLeaderForPartition for a moment; aiokafka retries and logs each one.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    stack.up(say)
    try:
        report = run(
            bench(
                Settings.from_env(),
                orders,
                paced_orders,
                lambda line: console.print(line, highlight=False),
                timeout,
            )
        )
    except VariantTooSlow as slow:
        fail(f"{slow}; give it more with --timeout")
    except GroupNotStable as problem:
        fail(str(problem))
    table = Table(
        "variant", "orders/s", "seconds", "CPU µs/event", "note", title=f"{orders:,} orders"
    )
    for result in report.results:
        cpu = f"{result.cpu_us_per_event:,.0f}" if result.cpu_us_per_event else "-"
        table.add_row(
            result.variant,
            f"{result.orders_per_second:,.0f}",
            f"{result.seconds:.1f}",
            cpu,
            result.note,
        )
    console.print(table)
    console.print(
        f"ours / naive: {times(report.ratios['ours_vs_naive'])}; ours / lower ceiling: {report.ratios['ours_vs_lower_ceiling'] or 0:.0%}; "
        f"CPU per event: naive / ours {times(report.ratios['naive_cpu_vs_ours'])}, ours / relay floor {times(report.ratios['ours_cpu_vs_floor'])}, "
        f"ours / libraries floor {times(report.ratios['ours_cpu_vs_libraries_floor'])}; "
        f"paced at {report.latency['orders_per_second']:,.0f} orders/s: p50 {report.latency['p50_ms']:.0f} ms, "
        f"p95 {report.latency['p95_ms']:.0f} ms, p99 {report.latency['p99_ms']:.0f} ms",
        highlight=False,
    )
    data, picture = write(report, Path(out))
    console.print(f"wrote {data}" + (f" and {picture}" if picture else ""), highlight=False)


@app.command("chaos")
def chaos_command(
    orders: int = typer.Option(20_000, "--orders", min=10),
    workers: int = typer.Option(2, "--workers", min=1),
    kills: int = typer.Option(
        3, "--kills", min=0, help="Workers killed with SIGKILL at random points."
    ),
    broker_restarts: int = typer.Option(1, "--broker-restarts", min=0),
    store_restarts: int = typer.Option(1, "--store-restarts", min=0),
    leader_kills: int = typer.Option(
        0, "--leader-kills", min=0, help="On a cluster: SIGKILL the busiest partition's leader."
    ),
    controller_kills: int = typer.Option(
        0, "--controller-kills", min=0, help="On a cluster: SIGKILL the active KRaft controller."
    ),
    rate: float = typer.Option(100.0, "--rate", min=1, help="Orders per second sent."),
    news_rate: float = typer.Option(
        0.5,
        "--news-rate",
        min=0,
        max=1,
        help="Share of orders whose fulfillment gets status reports and tracking updates.",
    ),
    out: str = typer.Option("chaos-results", "--out"),
) -> None:
    """Bounce workers, broker and store under a stream of orders; check every record against the oracle."""
    import json
    import logging
    from dataclasses import asdict

    from chaos.oracle import MUST_BE_ZERO
    from chaos.run import NotDrained, Plan, chaos
    from cli.common import run

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    folder = results_folder(out, "latest.json", "logs")
    stack.up(say)
    local = environment().local_stack
    plan = Plan(
        orders,
        workers,
        kills,
        broker_restarts,
        store_restarts,
        rate=rate,
        news_rate=news_rate,
        leader_kills=leader_kills,
        controller_kills=controller_kills,
    )
    try:
        report = run(
            chaos(
                Settings.from_env(),
                plan,
                folder / "logs",
                lambda line: console.print(line, highlight=False),
                local,
            )
        )
    except NotDrained as problem:
        fail(str(problem))
    table = Table(
        "check",
        "count",
        title=f"chaos: {orders:,} orders, {report.inputs_sent:,} inputs, {report.seconds:.0f}s",
    )
    for name, value in report.verdict.items():
        if name != "examples":
            table.add_row(name, str(value))
    table.add_row("unexpected worker exits", str(report.unexpected_worker_exits))
    console.print(table)
    for example in report.verdict["examples"][:5]:
        console.print(f"  {example}", highlight=False)
    write_results(folder / "latest.json", json.dumps(asdict(report), indent=2) + "\n")
    clean = all(report.verdict[count] == 0 for count in MUST_BE_ZERO)
    if not clean:
        fail("the chaos run found lost, differing or doubly applied records; see the report")


@app.command("soak")
def soak_command(
    minutes: float = typer.Option(10.0, "--minutes", min=0.1),
    rate: float = typer.Option(50.0, "--rate", min=1, help="Orders per second."),
    out: str = typer.Option("chaos-results", "--out"),
) -> None:
    """Steady load for a while: worker memory and the outbox backlog must stay flat."""
    import json
    from dataclasses import asdict

    from chaos.soak import soak
    from cli.common import run

    folder = results_folder(out, "soak.json", "soak-logs")
    stack.up(say)
    report = run(
        soak(
            Settings.from_env(),
            minutes,
            rate,
            folder / "soak-logs",
            lambda line: console.print(line, highlight=False),
        )
    )
    first, last = report.samples[0], report.samples[-1]
    console.print(
        f"completed {report.completed:,}/{report.orders:,} orders; first sample {first}; last sample {last}",
        highlight=False,
    )
    write_results(folder / "soak.json", json.dumps(asdict(report), indent=2) + "\n")
    if report.completed < report.orders:
        fail(f"{report.orders - report.completed:,} orders did not complete; see the report")


@app.command()
def demo(
    workers: int = typer.Option(
        2, "--workers", min=1, help="Worker processes to run for the demo."
    ),
    keep_stack: bool = typer.Option(
        False, "--keep-stack", help="Leave a stack the demo started running."
    ),
    with_console: bool = typer.Option(
        False,
        "--console",
        help="Then keep the stack and workers running and serve the console on 127.0.0.1:PORT.",
    ),
    port: int = typer.Option(
        8000, "--port", min=1, max=65535, help="The console's port, with --console."
    ),
) -> None:
    """The main job end to end: stack, workers, realistic traffic, live progress, summary."""
    from console.server import ConsoleError
    from tools.demo import Stalled, Unreachable
    from tools.demo import demo as run_demo

    try:
        with failing_in_one_line():
            run_demo(workers, keep_stack, console, with_console=with_console, console_port=port)
    except stack.StackError as problem:
        fail(str(problem))  # as `stack up` says it
    except ConsoleError as problem:
        fail(str(problem), EXIT_USAGE)
    except Unreachable as problem:
        fail(str(problem), EXIT_UNAVAILABLE)
    except Stalled as problem:
        fail(str(problem))


@app.command("console")
def console_command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; loopback unless you mean otherwise."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
) -> None:
    """The operator console: orders, actions as input events, dead letters (login required)."""
    from console.server import ConsoleError, serve

    try:
        serve(host, port)
    except (ConfigError, ConsoleError) as problem:
        fail(str(problem), EXIT_USAGE)


def _debugging() -> bool:
    """FULFILLMENT_DEBUG is on; False when the environment itself is what failed to read."""
    try:
        return environment().fulfillment_debug
    except ConfigError:
        return False


def _message(problem: Exception) -> str:
    """What the error says; pydantic's messages quote the values, which may be secrets: not those."""
    if isinstance(problem, ValidationError):
        fields = [".".join(map(str, error["loc"])) or "the document" for error in problem.errors()]
        return f"{len(fields)} invalid fields ({', '.join(fields[:5])}), values withheld"
    return str(problem)


def main() -> None:
    """Run the CLI; unexpected failures are one line unless FULFILLMENT_DEBUG is set."""
    # `worker` configures its own JSON logs; every other command prints its failures once.
    quiet_client_logs()
    for position, argument in enumerate(sys.argv[1:], 1):
        if not is_text(argument):
            errors.print(error_line(f"argument {position} is not valid UTF-8"))
            sys.exit(EXIT_USAGE)
    try:
        # Not standalone: a usage error comes here, to be one line rather than Typer's box.
        code = app(standalone_mode=False)
    except _NO_ARGS_IS_HELP as problem:
        # The help, as a bare command asks for it: Typer has printed it already, plain
        # click leaves it in the message.
        if problem.format_message().strip():
            problem.show()
        sys.exit(EXIT_USAGE)
    except _CLICK.ClickException as problem:
        errors.print(error_line(_usage(problem)))
        sys.exit(problem.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        errors.print("interrupted")
        sys.exit(130)
    except ConfigError as problem:
        # Whichever command read the bad variable: exit 2, "usage or configuration".
        errors.print(error_line(str(problem)))
        sys.exit(EXIT_USAGE)
    except stack.StackError as problem:
        # The local stack would not start (stack up, bench, chaos, soak): one line, exit 1.
        errors.print(error_line(str(problem)))
        sys.exit(EXIT_FAILURE)
    except Exception as problem:
        if _debugging():
            raise
        # One line whatever the exception says: servers' messages may span several.
        said = " ".join(_message(problem).split())
        errors.print(
            error_line(
                f"{type(problem).__name__}: {said} (FULFILLMENT_DEBUG=1 shows the traceback)"
            )
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


class _UsageError(Protocol):
    def format_message(self) -> str: ...


def _usage(problem: _UsageError) -> str:
    """A usage error in one line, pointing at the command's help."""
    said = " ".join(problem.format_message().split())
    context = getattr(problem, "ctx", None)
    return f"{said} (see `{context.command_path} --help`)" if context else said


if __name__ == "__main__":
    main()
