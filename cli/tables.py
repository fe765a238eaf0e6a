"""Rich tables shared by the commands and the demo."""

from __future__ import annotations

from rich.table import Table

from schemas.document import OrderDocument


def timeline_table(order: OrderDocument, title: str) -> Table:
    table = Table("at", "type", "summary", "event", title=title, title_justify="left")
    for entry in order.timeline:
        table.add_row(
            entry.at.strftime("%H:%M:%S.%f")[:-3], entry.type, entry.summary, entry.event_id[:24]
        )
    return table
