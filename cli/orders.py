"""`fulfillment order show` and `fulfillment orders search`: orders and their timelines for people."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from cli.common import console, fail, run
from cli.tables import fulfillments_table, history_table, shipment_heading, timeline_table
from config import Settings
from schemas.document import Fulfillment, OrderDocument
from schemas.names import DeliveryStatus, OrderStatus
from store.orders import OrderStore, connect

order_app = typer.Typer(no_args_is_help=True, help="One order: details and timeline.")
orders_app = typer.Typer(no_args_is_help=True, help="Find orders.")
SEALED = "<sealed>"


async def _with_store(action: Any) -> Any:
    settings = Settings.from_env()
    client = connect(settings.mongodb_uri, serverSelectionTimeoutMS=3000)
    try:
        return await action(OrderStore(client, settings.database))
    finally:
        await client.close()


def redacted(order: OrderDocument) -> dict[str, Any]:
    """The document as JSON, with sealed credentials shown only as present."""
    document = order.model_dump(mode="json", by_alias=True)
    for fulfillment in document["fulfillments"]:
        _redact_distributions(fulfillment.get("distributions"))
    for entry in document["outbox"]:
        # An unsent fulfillment.completed keeps the same sealed credentials in its JSON.
        if entry.get("sealed") is not False and "sealed_credentials" in entry["value"]:
            event = json.loads(entry["value"])
            _redact_distributions(event.get("data", {}).get("distributions"))
            entry["value"] = json.dumps(event, ensure_ascii=False)
    return document


def _redact_distributions(distributions: list[dict[str, Any]] | None) -> None:
    for distribution in distributions or []:
        if distribution.get("sealed_credentials"):
            distribution["sealed_credentials"] = SEALED


@order_app.command("show")
def show(
    order_id: str = typer.Argument(..., help="The order id (the events' subject)."),
    as_json: bool = typer.Option(False, "--json", help="Print the document as JSON."),
) -> None:
    """Show an order: statuses, lines, fulfillments, shipments and timeline."""
    order = run(_with_store(lambda store: store.load(order_id)))
    if order is None:
        fail(f"order {order_id!r} not found")
    if as_json:
        print(json.dumps(redacted(order), indent=2))
        return
    _print_order(order)


def _print_order(order: OrderDocument) -> None:
    customer = f"{order.customer.name} <{order.customer.email}>" if order.customer else "-"
    status = order.status.value if order.status else "-"
    if order.total is not None:
        paid = f"({order.captured_amount}/{order.total} {order.currency or ''})"
    else:  # captures that came before the order count once it is placed
        paid = f"({len(order.captures)} captures recorded, counted once the order is placed)"
    console.print(
        Text.assemble(
            (order.id, "bold"),
            f"  {order.order_number or '(not placed yet)'}  customer {customer}\nstatus ",
            (status, "bold"),
            "  delivery ",
            (order.delivery_status.value, "bold"),
            f"\npayment {order.payment_status.value} {paid}",
        )
    )
    console.print(_lines_table(order))
    console.print(fulfillments_table(order))
    for fulfillment in order.fulfillments:
        if fulfillment.shipment is not None or fulfillment.shipment_events:
            _print_shipment(fulfillment)
    _print_remembered(order)
    console.print(timeline_table(order, title="Timeline"))


def _lines_table(order: OrderDocument) -> Table:
    lines = Table(
        "line",
        "sku",
        "title",
        "delivery",
        "ordered",
        "fulfilled",
        title="Lines",
        title_justify="left",
    )
    for line in order.lines:
        lines.add_row(
            Text(line.line_id),
            Text(line.sku),
            Text(line.title),
            line.delivery.value,
            str(line.quantity),
            str(line.fulfilled_quantity),
        )
    return lines


def _print_shipment(fulfillment: Fulfillment) -> None:
    """Heading, tracking link and status history of one fulfillment's shipment."""
    console.print(shipment_heading(fulfillment), highlight=False)
    link = fulfillment.shipment.tracking_url if fulfillment.shipment else None
    if link:
        # Soft-wrapped: the terminal may wrap the link, but it stays one link to copy or click.
        console.print(f"tracking link {link}", highlight=False, soft_wrap=True)
    if fulfillment.shipment_events:
        console.print(history_table(fulfillment))


def _print_remembered(order: OrderDocument) -> None:
    """News waiting for a fulfillment that has not completed (or not arrived) yet."""
    for news in order.early_shipment_news:
        if news.tracking_updates or news.reports:
            updates = _count(len(news.tracking_updates), "tracking update")
            reports = _count(len(news.reports), "status report")
            console.print(
                f"remembered for {news.fulfillment_id} until it completes: {updates}, {reports}",
                highlight=False,
            )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@orders_app.command("search")
def search(
    text: str = typer.Argument(
        "", help="Part of the customer's name or email, or of the order number."
    ),
    status: OrderStatus | None = typer.Option(None, "--status", help="Only orders in this status."),
    delivery_status: DeliveryStatus | None = typer.Option(
        None,
        "--delivery-status",
        help="Only orders in this delivery status (none also finds orders from before 1.1).",
    ),
    oldest_first: bool = typer.Option(
        False, "--oldest-first", help="Sort by time placed, oldest first."
    ),
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Find orders by customer or order number, newest placed first."""
    found: list[OrderDocument] = run(
        _with_store(
            lambda store: store.search(
                text or None,
                status.value if status else None,
                not oldest_first,
                limit,
                delivery_status=delivery_status.value if delivery_status else None,
            )
        )
    )
    if as_json:
        for order in found:
            print(json.dumps(redacted(order)))
        return
    console.print(search_table(found))
    console.print(f"{len(found)} orders", style="dim")


def search_table(found: list[OrderDocument]) -> Table:
    """Orders in four columns of stacked fields, so that 80 columns fit them. The id is what
    `order show` takes: its column is as wide as the longest id (up to 40), never cut."""
    longest = max((len(order.id) for order in found), default=5)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("order / number", min_width=min(longest, 40), overflow="fold")
    table.add_column("placed (UTC)", overflow="fold")
    table.add_column("customer", overflow="fold", max_width=30)
    table.add_column("status / payment / delivery / total", overflow="fold")
    for order in found:
        placed = order.placed_at.strftime("%Y-%m-%d\n%H:%M:%S") if order.placed_at else ""
        customer = f"{order.customer.name}\n{order.customer.email}" if order.customer else ""
        status = order.status.value if order.status else ""
        statuses = f"{status}\n{order.payment_status.value}\n{order.delivery_status.value}"
        # Text, not markup: a customer may well be called "[/b]".
        table.add_row(
            Text(f"{order.id}\n{order.order_number or ''}"),
            placed,
            Text(customer),
            Text(f"{statuses}\n{order.total} {order.currency}"),
        )
    return table
