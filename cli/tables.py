"""Rich tables shared by the commands and the demo, readable on an 80-column terminal.

Ids are never cut: their columns do not wrap, and fold rather than lose characters if the
terminal is narrower still. Other values wrap, and fold a word too long for its column:
nothing is cut with an ellipsis. Every value is plain text, never markup: a carrier's note
may well contain "[/b]".
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Column, Table
from rich.text import Text

from schemas.document import Fulfillment, OrderDocument


def _id(header: str) -> Column:
    return Column(header, no_wrap=True, overflow="fold")


def _folded(header: str) -> Column:
    return Column(header, overflow="fold")


def _utc(moment: datetime) -> str:
    """In UTC: a document's times keep the offset they were given until they are stored."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def timeline_table(order: OrderDocument, title: str) -> Table:
    """Each entry's type and summary in one column, so that neither is cut on 80 columns."""
    table = Table("at", "what", _id("event"), title=title, title_justify="left")
    for entry in order.timeline:
        table.add_row(
            entry.at.strftime("%H:%M:%S.%f")[:-3],
            Text.assemble((entry.type, "bold"), "  ", entry.summary, overflow="fold"),
            Text(entry.event_id),
        )
    return table


def fulfillments_table(order: OrderDocument) -> Table:
    """Each fulfillment: what it carried out, how it travels, why it was held or cancelled.

    The hold and reason columns are left out when no fulfillment has one: room for the rest.
    """
    held = any(fulfillment.holds for fulfillment in order.fulfillments)
    reasons = any(fulfillment.reason for fulfillment in order.fulfillments)
    table = Table(
        _id("fulfillment"),
        _folded("status"),
        _folded("lines"),
        _folded("delivery"),
        title="Fulfillments",
        title_justify="left",
    )
    if held:
        table.add_column("held for", no_wrap=True)
    if reasons:
        table.add_column("reason", overflow="fold")
    for fulfillment in order.fulfillments:
        cells = [
            fulfillment.fulfillment_id,
            fulfillment.status.value,
            _items(fulfillment),
            _delivery(fulfillment),
        ]
        if held:
            # "awaiting_payment" reads "held for payment": narrow enough for 80 columns.
            cells.append("\n".join(h.value.removeprefix("awaiting_") for h in fulfillment.holds))
        if reasons:
            reason = fulfillment.reason
            cells.append(f"{reason.value}: {fulfillment.detail}" if reason else "")
        _row(table, *cells)
    return table


def history_table(fulfillment: Fulfillment) -> Table:
    """The shipment's status reports in time order; the last one is the current status."""
    table = Table(
        Column("happened at (UTC)", no_wrap=True),
        Column("status", no_wrap=True),
        _folded("location"),
        _folded("note"),
        title="Status history",
        title_justify="left",
    )
    for report in fulfillment.shipment_events:
        _row(
            table,
            _utc(report.happened_at),
            report.status.value,
            report.location or "",
            report.note or "",
        )
    return table


def shipment_heading(fulfillment: Fulfillment) -> Text:
    """`Shipment <id> (<status>): <carrier> <number>, <shipment status>`."""
    shipped = fulfillment.shipment
    tracking = f"{shipped.carrier} {shipped.tracking_number}" if shipped else "no tracking data"
    where = fulfillment.shipment_status.value if fulfillment.shipment_status else "no status yet"
    return Text.assemble(
        (f"Shipment {fulfillment.fulfillment_id}", "bold"),
        f" ({fulfillment.status.value}): {tracking}, ",
        (where, "bold"),
    )


def _row(table: Table, *cells: str) -> None:
    table.add_row(*(Text(cell) for cell in cells))


def _items(fulfillment: Fulfillment) -> str:
    if fulfillment.lines:
        return ", ".join(f"{item.quantity} x {item.line_id}" for item in fulfillment.lines)
    if fulfillment.requested_lines is None:
        return "all remaining"
    return ", ".join(f"{r.quantity} x {r.line_id}" for r in fulfillment.requested_lines)


def _delivery(fulfillment: Fulfillment) -> str:
    """The carrier, airway bill and where the parcel is; or how many digital deliveries."""
    parts = []
    if fulfillment.shipment:
        parts.append(f"{fulfillment.shipment.carrier} {fulfillment.shipment.tracking_number}")
    if fulfillment.shipment_status:
        parts.append(fulfillment.shipment_status.value)
    if fulfillment.distributions:
        count = len(fulfillment.distributions)
        parts.append(f"{count} digital deliver{'y' if count == 1 else 'ies'}")
    return "\n".join(parts)
