"""`fulfillment order show` and `fulfillment orders search`: orders and their timelines for people."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich import box
from rich.table import Table

from cli.common import console, fail, run
from cli.tables import timeline_table
from config import Settings
from schemas.document import OrderDocument
from schemas.names import OrderStatus
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
        for distribution in fulfillment.get("distributions") or []:
            if distribution.get("sealed_credentials"):
                distribution["sealed_credentials"] = SEALED
    return document


@order_app.command("show")
def show(
    order_id: str = typer.Argument(..., help="The order id (the events' subject)."),
    as_json: bool = typer.Option(False, "--json", help="Print the document as JSON."),
) -> None:
    """Show an order: status, lines, fulfillments and timeline."""
    order = run(_with_store(lambda store: store.load(order_id)))
    if order is None:
        fail(f"order {order_id!r} not found")
    if as_json:
        print(json.dumps(redacted(order), indent=2))
        return
    _print_order(order)


def _print_order(order: OrderDocument) -> None:
    customer = f"{order.customer.name} <{order.customer.email}>" if order.customer else "-"
    console.print(
        f"[bold]{order.id}[/bold] {order.order_number or '(not placed yet)'}  status "
        f"[bold]{order.status.value if order.status else '-'}[/bold]  payment {order.payment_status.value} "
        f"({order.captured_amount}/{order.total or '?'} {order.currency or ''})  customer {customer}",
        highlight=False,
    )
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
            line.line_id,
            line.sku,
            line.title,
            line.delivery.value,
            str(line.quantity),
            str(line.fulfilled_quantity),
        )
    console.print(lines)
    fulfillments = Table(
        "fulfillment",
        "status",
        "lines",
        "shipment / delivery",
        "reason",
        title="Fulfillments",
        title_justify="left",
    )
    for fulfillment in order.fulfillments:
        shipped = fulfillment.shipment
        delivery = f"{shipped.carrier} {shipped.tracking_number}" if shipped else ""
        if fulfillment.distributions:
            delivery += f"{len(fulfillment.distributions)} digital deliveries"
        items = ", ".join(f"{item.quantity} x {item.line_id}" for item in fulfillment.lines) or (
            "all remaining"
            if fulfillment.requested_lines is None
            else ", ".join(f"{r.quantity} x {r.line_id}" for r in fulfillment.requested_lines)
        )
        reason = f"{fulfillment.reason.value}: {fulfillment.detail}" if fulfillment.reason else ""
        fulfillments.add_row(
            fulfillment.fulfillment_id, fulfillment.status.value, items, delivery, reason
        )
    console.print(fulfillments)
    console.print(timeline_table(order, title="Timeline"))


@orders_app.command("search")
def search(
    text: str = typer.Argument(
        "", help="Part of the customer's name or email, or of the order number."
    ),
    status: OrderStatus | None = typer.Option(None, "--status", help="Only orders in this status."),
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
                text or None, status.value if status else None, not oldest_first, limit
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
    table.add_column("status / payment / total", overflow="fold")
    for order in found:
        placed = order.placed_at.strftime("%Y-%m-%d\n%H:%M:%S") if order.placed_at else ""
        customer = f"{order.customer.name}\n{order.customer.email}" if order.customer else ""
        status = order.status.value if order.status else ""
        table.add_row(
            f"{order.id}\n{order.order_number or ''}",
            placed,
            customer,
            f"{status}\n{order.payment_status.value}\n{order.total} {order.currency}",
        )
    return table
