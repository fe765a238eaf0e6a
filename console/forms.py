"""The console's forms: deterministic ids per submission, parsing and readable validation.

Every form carries a nonce rendered with it. The event id (and any id the event creates) is
derived from that nonce, so a double click or a re-sent form makes the same event, which the
pipeline applies once. Credentials are read from a submission straight into the event and are
never kept in a form that could be rendered again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from schemas.document import Line, OrderDocument
from schemas.errors import problems
from schemas.events import (
    Address,
    Credentials,
    Distribution,
    FulfillmentCancelRequested,
    FulfillmentRequested,
    FulfillmentTrackingUpdated,
    OrderCancelRequested,
    PaymentCaptured,
    RequestedLine,
    Shipment,
    ShipmentStatusReported,
)
from schemas.iso import COUNTRIES
from schemas.names import Delivery, OrderStatus, PaymentStatus, ShipmentStatus

NONCE_PATTERN = re.compile(r"[0-9a-f]{32}")
# ASCII digits only ("²".isdigit() is true), and few enough to be a quantity.
QUANTITY = re.compile(r"[0-9]{1,9}")
# The years an RFC 3339 timestamp can carry.
FIRST_YEAR, LAST_YEAR = 1000, 9999
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")
ADDRESS_LABELS = {
    "name": "Recipient",
    "line1": "Address line 1",
    "line2": "Address line 2",
    "city": "City",
    "region": "Region",
    "postal_code": "Postal code",
    "country": "Country",
}
REQUIRED_ADDRESS = ("name", "line1", "city", "postal_code", "country")
MAX_TEXT = 1000
REQUESTED_BY = "console"
# A report may be a little ahead of this machine's clock, not more.
FUTURE_TOLERANCE = timedelta(minutes=10)


def new_nonce() -> str:
    """A fresh nonce for one rendered form."""
    return secrets.token_hex(16)


def valid_nonce(nonce: str) -> bool:
    return bool(NONCE_PATTERN.fullmatch(nonce))


# "partition:offset" pairs, comma-separated: as many as a topic may have partitions.
_ENDS = re.compile(r"[0-9]{1,6}:[0-9]{1,19}(?:,[0-9]{1,6}:[0-9]{1,19}){0,9999}")


def ends_text(ends: Mapping[int, int]) -> str:
    """The end offsets a replay preview read up to, as its confirming form carries them."""
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(ends.items()))


def parse_ends(text: str) -> dict[int, int] | None:
    """The end offsets from `ends_text`; None if the text is not that (a topic has at least
    one partition)."""
    if not _ENDS.fullmatch(text):
        return None
    pairs = (pair.split(":") for pair in filter(None, text.split(",")))
    return {int(partition): int(offset) for partition, offset in pairs}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def event_id(nonce: str, action: str, order_id: str) -> str:
    """The event id of one form submission: the same nonce and action give the same id."""
    return f"evt-console-{_digest(nonce, action, order_id)[:32]}"


def fulfillment_id(nonce: str, order_id: str) -> str:
    """A new fulfillment's id, fixed by the form's nonce so a re-sent form is one fulfillment."""
    return f"ful-{_digest(nonce, 'fulfillment', order_id)[:12]}"


def text(form: Mapping[str, Any], name: str) -> str:
    """A text field, stripped; missing or a file upload reads as empty."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def readable(problem: ValidationError, labels: Mapping[str, str] | None = None) -> list[str]:
    """Pydantic's errors as sentences naming the field, never quoting what was entered."""
    messages = []
    for location, message in problems(problem):
        where = ".".join(str(part) for part in location)
        name = (labels or {}).get(where, where.replace("_", " "))
        messages.append(f"{name}: {message}" if name else message)
    return messages


# ---- capture -------------------------------------------------------------------------------


def outstanding(order: OrderDocument) -> Decimal:
    """What is left to capture in the order's currency (never below zero)."""
    if order.total is None:
        return Decimal(0)
    return max(Decimal(order.total) - Decimal(order.captured_amount), Decimal(0))


def can_capture(order: OrderDocument) -> bool:
    return (
        order.placed
        and order.status is not OrderStatus.CANCELLED
        and order.payment_status is not PaymentStatus.CAPTURED
        and outstanding(order) > 0
    )


def capture(order: OrderDocument) -> PaymentCaptured:
    """`payment.captured` for the outstanding amount. Its payment id depends on the order's
    state, not the form, so two forms shown at the same state capture once: the pipeline
    counts a repeated payment id once."""
    amount = format(outstanding(order), "f")
    payment = f"pay-console-{_digest(order.id, order.captured_amount, order.total or '')[:16]}"
    return PaymentCaptured(
        payment_id=payment, amount=amount, currency=order.currency or "", method="console"
    )


# ---- cancel requests -----------------------------------------------------------------------


def reason_of(form: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    reason = text(form, "reason")
    if len(reason) > MAX_TEXT:
        return None, [f"Reason: at most {MAX_TEXT} characters"]
    return reason or None, []


def cancel_fulfillment(fulfillment: str, form: Mapping[str, Any]) -> FulfillmentCancelRequested:
    reason, _ = reason_of(form)
    return FulfillmentCancelRequested(fulfillment_id=fulfillment, reason=reason)


def cancel_order(form: Mapping[str, Any]) -> OrderCancelRequested:
    reason, _ = reason_of(form)
    return OrderCancelRequested(reason=reason)


# ---- manual fulfillment ------------------------------------------------------------------


@dataclass
class FulfillLine:
    """One order line on the Manual Fulfillment page, with what was typed for it."""

    index: int
    line: Line
    quantity: str
    access_url: str = ""
    instructions: str = ""

    @property
    def digital(self) -> bool:
        return self.line.delivery is Delivery.DIGITAL

    @property
    def open(self) -> bool:
        """Whether anything of this line is left to fulfill."""
        return self.line.unfulfilled > 0


@dataclass
class FulfillForm:
    """The Manual Fulfillment form: prefilled, or as submitted (credentials never kept)."""

    lines: list[FulfillLine]
    address: dict[str, str]
    carrier: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    # Credentials were entered but the form is shown again: they must be entered again.
    credentials_dropped: bool = False

    @property
    def ships(self) -> bool:
        return any(not line.digital and line.open for line in self.lines)

    @property
    def has_digital(self) -> bool:
        return any(line.digital and line.open for line in self.lines)

    @property
    def messages(self) -> list[str]:
        return list(self.errors.values())


def _address_values(address: Address | None) -> dict[str, str]:
    values = address.model_dump() if address else {}
    return {name: str(values.get(name) or "") for name in ADDRESS_FIELDS}


def prefilled(order: OrderDocument) -> FulfillForm:
    """Every line with what is still unfulfilled, and the order's shipping address."""
    lines = [
        FulfillLine(index, line, str(line.unfulfilled)) for index, line in enumerate(order.lines)
    ]
    return FulfillForm(lines, _address_values(order.shipping_address))


def submitted(order: OrderDocument, form: Mapping[str, Any]) -> FulfillForm:
    """The form as the operator filled it in, without its credentials."""
    lines = [
        FulfillLine(
            index,
            line,
            text(form, f"qty-{index}") if line.unfulfilled > 0 else "0",
            access_url=text(form, f"access_url-{index}"),
            instructions=text(form, f"instructions-{index}"),
        )
        for index, line in enumerate(order.lines)
    ]
    address = {name: text(form, f"ship-{name}") for name in ADDRESS_FIELDS}
    # "de" is Germany; "ß" is not "SS" (South Sudan): only ASCII letters are upper-cased.
    country = address["country"]
    address["country"] = country.upper() if country.isascii() else country
    return FulfillForm(
        lines,
        address,
        carrier=text(form, "carrier"),
        tracking_number=text(form, "tracking_number"),
        tracking_url=text(form, "tracking_url"),
    )


def _quantity(line: FulfillLine) -> int | str:
    """The quantity typed for a line, or a sentence saying what is wrong with it."""
    if not line.open:
        return 0
    if not QUANTITY.fullmatch(line.quantity):
        return "enter a whole number of 0 or more"
    value = int(line.quantity)
    if value > line.line.unfulfilled:
        return f"at most {line.line.unfulfilled} (what is still unfulfilled)"
    return value


def _credential_values(form: Mapping[str, Any], index: int) -> dict[str, str]:
    """The credentials typed for a digital line, only those given (not blank), exactly as
    typed: a space at either end may belong to a password."""
    values = {name: form.get(f"{name}-{index}") for name in ("username", "password", "token")}
    return {
        name: value for name, value in values.items() if isinstance(value, str) and value.strip()
    }


def _check_length(errors: dict[str, str], key: str, label: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        errors[key] = f"{label}: at most {MAX_TEXT} characters"


def _check_address(form: FulfillForm) -> Address | None:
    for name in REQUIRED_ADDRESS:
        if not form.address[name]:
            form.errors[f"ship-{name}"] = f"{ADDRESS_LABELS[name]}: required for a shipment"
    country = form.address["country"]
    if country and country not in COUNTRIES:
        form.errors["ship-country"] = "Country: a two-letter ISO 3166-1 code, such as DE or US"
    for name in ADDRESS_FIELDS:
        _check_length(form.errors, f"ship-{name}", ADDRESS_LABELS[name], form.address[name])
    if any(key.startswith("ship-") for key in form.errors):
        return None
    return Address(**{name: value for name, value in form.address.items() if value})


def _check_shipment(form: FulfillForm) -> Shipment | None:
    if not form.carrier:
        form.errors["carrier"] = "Carrier: required for a shipment (the shipping agent)"
    if not form.tracking_number:
        form.errors["tracking_number"] = "Airway bill: required for a shipment"
    if form.tracking_url and not re.match(r"https?://\S+$", form.tracking_url):
        form.errors["tracking_url"] = "Tracking link: a web address starting with https://"
    _check_length(form.errors, "carrier", "Carrier", form.carrier)
    _check_length(form.errors, "tracking_number", "Airway bill", form.tracking_number)
    _check_length(form.errors, "tracking_url", "Tracking link", form.tracking_url)
    if {"carrier", "tracking_number", "tracking_url"} & form.errors.keys():
        return None
    return Shipment(
        carrier=form.carrier,
        tracking_number=form.tracking_number,
        tracking_url=form.tracking_url or None,
    )


def _check_distribution(
    form: FulfillForm, line: FulfillLine, raw: Mapping[str, Any]
) -> Distribution | None:
    secrets_given = _credential_values(raw, line.index)
    key = f"access_url-{line.index}"
    if not (line.access_url or secrets_given or line.instructions):
        form.errors[key] = f"{line.line.title}: give an access URL, credentials or instructions"
        return None
    found = len(form.errors)
    for name, value in secrets_given.items():
        # Checked before any model sees the value: a model's error message would quote it.
        _check_length(form.errors, f"{name}-{line.index}", f"{line.line.title}: {name}", value)
    _check_length(form.errors, key, f"{line.line.title}: access URL", line.access_url)
    _check_length(
        form.errors,
        f"instructions-{line.index}",
        f"{line.line.title}: instructions",
        line.instructions,
    )
    if len(form.errors) > found:
        return None
    return Distribution(
        line_id=line.line.line_id,
        access_url=line.access_url or None,
        credentials=Credentials(**secrets_given) if secrets_given else None,
        instructions=line.instructions or None,
    )


# Marks a draft whose credentials were typed and not kept: they must be typed again.
CREDENTIALS_DROPPED = "credentials-dropped"


def draft_of(raw: Mapping[str, Any]) -> dict[str, str]:
    """What `submitted` reads of a Manual Fulfillment form, to show it again later: never a
    credential (`CREDENTIALS_DROPPED` says some were typed)."""
    kept = ("qty-", "access_url-", "instructions-", "ship-")
    draft = {
        name: value
        for name, value in raw.items()
        if isinstance(value, str)
        and (name.startswith(kept) or name in ("carrier", "tracking_number", "tracking_url"))
    }
    typed = [name for name in raw if name.startswith(("username-", "password-", "token-"))]
    indexes = {name.rsplit("-", 1)[1] for name in typed}
    if any(index.isdigit() and _credential_values(raw, int(index)) for index in indexes):
        draft[CREDENTIALS_DROPPED] = "1"
    return draft


def from_draft(order: OrderDocument, draft: Mapping[str, str]) -> FulfillForm:
    """The form as it was submitted when the store could not take it."""
    form = submitted(order, draft)
    form.credentials_dropped = CREDENTIALS_DROPPED in draft
    return form


def fulfillment_request(
    order: OrderDocument, raw: Mapping[str, Any], fulfillment: str
) -> tuple[FulfillForm, FulfillmentRequested | None]:
    """The request a submitted Manual Fulfillment form makes, or the form with its errors."""
    form = submitted(order, raw)
    chosen: list[tuple[FulfillLine, int]] = []
    # Lines the operator means to send, even with a wrong quantity: their shipment or
    # delivery details are checked too, so every problem is listed at once.
    meant: list[FulfillLine] = []
    for line in form.lines:
        quantity = _quantity(line)
        if isinstance(quantity, str):
            form.errors[f"qty-{line.index}"] = f"{line.line.title}: {quantity}"
            meant.append(line)
        elif quantity > 0:
            chosen.append((line, quantity))
            meant.append(line)
    if not chosen and not form.errors:
        form.errors["lines"] = (
            "Choose a quantity above 0 for at least one line"
            if any(line.open for line in form.lines)
            else "Nothing is left to fulfill on this order: another fulfillment took every"
            " quantity meanwhile. Nothing was sent."
        )
    shipment, address, distributions = None, None, []
    if any(not line.digital for line in meant):
        shipment = _check_shipment(form)
        address = _check_address(form)
    for line in meant:
        if line.digital:
            distribution = _check_distribution(form, line, raw)
            if distribution is not None:
                distributions.append(distribution)
    form.credentials_dropped = any(_credential_values(raw, line.index) for line in form.lines)
    if form.errors:
        return form, None
    changed = address is not None and address != order.shipping_address
    try:
        request = FulfillmentRequested(
            fulfillment_id=fulfillment,
            lines=[RequestedLine(line_id=line.line.line_id, quantity=q) for line, q in chosen],
            shipment=shipment,
            distributions=distributions or None,
            shipping_address=address if changed else None,
            requested_by=REQUESTED_BY,
        )
    except ValidationError as problem:
        form.errors.update({f"model-{i}": m for i, m in enumerate(readable(problem))})
        return form, None
    return form, request


# ---- times ---------------------------------------------------------------------------------


def parse_local_time(value: str) -> datetime | None:
    """A `datetime-local` field's value, read as UTC; None if it is not one, or not in the
    years an event can carry (RFC 3339 has four digits, and shifting to UTC must not overflow)."""
    try:
        moment = datetime.fromisoformat(value)
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return utc if FIRST_YEAR <= utc.year <= LAST_YEAR else None


# ---- after the fulfillment (contract 1.1) --------------------------------------------------


@dataclass
class TrackingForm:
    """Update tracking: the shipment's carrier, airway bill and link, as typed."""

    carrier: str
    tracking_number: str
    tracking_url: str
    errors: dict[str, str] = field(default_factory=dict)


def tracking_prefilled(shipment: Shipment) -> TrackingForm:
    return TrackingForm(shipment.carrier, shipment.tracking_number, shipment.tracking_url or "")


def tracking_update(
    fulfillment: str, shipment: Shipment, raw: Mapping[str, Any]
) -> tuple[TrackingForm, FulfillmentTrackingUpdated | None]:
    """`fulfillment.tracking_updated` with the fields that changed, or the form with errors."""
    form = TrackingForm(
        text(raw, "carrier"), text(raw, "tracking_number"), text(raw, "tracking_url")
    )
    if not form.carrier:
        form.errors["carrier"] = "Carrier: required (the shipping agent)"
    if not form.tracking_number:
        form.errors["tracking_number"] = "Airway bill: required"
    if form.tracking_url and not re.match(r"https?://\S+$", form.tracking_url):
        form.errors["tracking_url"] = "Tracking link: a web address starting with https://"
    for name, label in (
        ("carrier", "Carrier"),
        ("tracking_number", "Airway bill"),
        ("tracking_url", "Tracking link"),
    ):
        _check_length(form.errors, name, label, getattr(form, name))
    changes: dict[str, str] = {}
    if form.carrier != shipment.carrier:
        changes["carrier"] = form.carrier
    if form.tracking_number != shipment.tracking_number:
        changes["tracking_number"] = form.tracking_number
    if form.tracking_url != (shipment.tracking_url or ""):
        changes["tracking_url"] = form.tracking_url  # "" removes the link (contract 1.1)
    if not changes and not form.errors:
        form.errors["form"] = "Nothing changed: edit the carrier, the airway bill or the link"
    if form.errors:
        return form, None
    return form, FulfillmentTrackingUpdated(fulfillment_id=fulfillment, **changes)


@dataclass
class StatusForm:
    """Report shipment status, as typed; `happened_at` as a `datetime-local` value in UTC."""

    status: str
    happened_at: str
    location: str = ""
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def status_prefilled(current: ShipmentStatus | None, now: datetime) -> StatusForm:
    """The status after the current one (handed over first), happening now."""
    statuses = list(ShipmentStatus)
    following = statuses[0] if current is None else statuses[min(current.rank + 1, 3)]
    return StatusForm(following.value, now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))


def status_report(
    fulfillment: str, raw: Mapping[str, Any], now: datetime
) -> tuple[StatusForm, ShipmentStatusReported | None]:
    """`shipment.status_reported` from the form, or the form with errors."""
    form = StatusForm(
        text(raw, "status"), text(raw, "happened_at"), text(raw, "location"), text(raw, "note")
    )
    if form.status not in {status.value for status in ShipmentStatus}:
        form.errors["status"] = "Status: choose one of the list"
    moment = parse_local_time(form.happened_at) if form.happened_at else None
    if moment is None:
        form.errors["happened_at"] = "Happened at: a date and time, such as 2026-11-21 10:00"
    elif moment > now + FUTURE_TOLERANCE:
        form.errors["happened_at"] = "Happened at: cannot be in the future"
    _check_length(form.errors, "location", "Location", form.location)
    _check_length(form.errors, "note", "Note", form.note)
    if form.errors or moment is None:
        return form, None
    report = ShipmentStatusReported.model_validate(
        {
            "fulfillment_id": fulfillment,
            "status": form.status,
            "happened_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "location": form.location or None,
            "note": form.note or None,
        }
    )
    return form, report
