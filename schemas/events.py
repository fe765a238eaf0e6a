"""Wire models: the CloudEvents envelope and the `data` of every input and output event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from schemas.iso import COUNTRIES, CURRENCIES
from schemas.limits import MAX_ITEMS
from schemas.names import (
    CancelReason,
    Delivery,
    DeliveryStatus,
    EventType,
    HoldReason,
    OrderStatus,
    PaymentStatus,
    ShipmentStatus,
)

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
OptionalText = Annotated[str, StringConstraints(max_length=1000)]
# Decimal strings, never floats: "19.99", "0", "1200.5". [0-9], not \d: in the validator's
# regex (and Python's) \d also matches other scripts' digits, such as Arabic-Indic ones.
MONEY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,6})?$"
Money = Annotated[str, StringConstraints(pattern=MONEY_PATTERN)]
Quantity = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=1_000_000,
        # JSON Schema takes 2.0 for an integer; the worker does not.
        description="A whole number written without a fraction: 2, not 2.0.",
    ),
]
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320)]
# JSON, with or without media type parameters ("application/json; charset=utf-8"), in
# either content mode.
JSON_MEDIA_TYPE_PATTERN = r"^application/json[ \t]*(;.*)?$"


def _media_type(value: Any) -> Any:
    # Media types are case-insensitive, and a header may carry spaces or a line end around it.
    if not isinstance(value, str):
        return value
    kind, semicolon, parameters = value.strip().partition(";")
    return kind.strip().lower() + semicolon + parameters


# The normalising runs first (a before-validator listed last); the pattern stays in the schema.
JsonMediaType = Annotated[
    str,
    StringConstraints(pattern=JSON_MEDIA_TYPE_PATTERN, max_length=1000),
    BeforeValidator(_media_type),
]
# What each pattern asks for, in words: a validation error says this, not the expression.
PATTERN_MEANINGS = {
    MONEY_PATTERN: "should be a decimal string of up to 15 digits (0-9), up to 6 after the point",
    EMAIL_PATTERN: "should be an email address such as name@example.com",
    JSON_MEDIA_TYPE_PATTERN: "should be application/json, parameters allowed",
}


def _currency(code: str) -> str:
    if code not in CURRENCIES:
        # Never the value: this message may travel in a dead letter's `x-dlq-error`.
        raise ValueError("not an ISO 4217 currency code")
    return code


def _country(code: str) -> str:
    if code not in COUNTRIES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


# The code lists in the JSON Schemas too: a producer validating against them is refused
# nothing the worker would take, and takes nothing it would refuse.
Currency = Annotated[
    str, AfterValidator(_currency), Field(json_schema_extra={"enum": sorted(CURRENCIES)})
]
Country = Annotated[
    str, AfterValidator(_country), Field(json_schema_extra={"enum": sorted(COUNTRIES)})
]

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339_text(value: object) -> object:
    # Lax datetime parsing would also take numbers as Unix time, and other layouts.
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp string, such as 2026-11-21T10:00:00Z")
    return value


def _storable(value: datetime) -> datetime:
    # A BSON date is a UTC instant: "0001-01-01T00:00:00+01:00" is in year 0 there.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 in UTC") from None
    return value


# An RFC 3339 string whose UTC instant a BSON date can hold (CloudEvents `time`, `happened_at`).
# `format: date-time` alone is not checked by most JSON Schema validators: the layout is a
# pattern too (the year range and leap seconds are the worker's to refuse).
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_storable),
    Field(json_schema_extra={"pattern": f"^{_RFC3339.pattern}$"}),
]


class WireModel(BaseModel):
    """Unknown extra fields are accepted and ignored (contract: envelope rules)."""

    # A validation error's text leaves out the values: an integrator's logs may keep it, and
    # a request's value may be a credential.
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class Envelope(WireModel):
    """CloudEvents 1.0 structured mode; `data` is validated by the model of its `type`."""

    specversion: Literal["1.0"]
    id: Identifier
    source: Text
    type: Text
    subject: Identifier
    time: Timestamp
    datacontenttype: JsonMediaType | None = None
    data: dict[str, Any]


# ---- input data ---------------------------------------------------------------------------


class Customer(WireModel):
    name: Text
    email: Email
    phone: OptionalText | None = None


class Address(WireModel):
    name: Text
    line1: Text
    line2: OptionalText | None = None
    city: Text
    region: OptionalText | None = None
    postal_code: Text
    country: Country


class OrderLine(WireModel):
    line_id: Identifier
    sku: Text
    title: Text
    quantity: Quantity
    unit_price: Money
    delivery: Delivery


class OrderPlaced(WireModel):
    order_number: Text
    customer: Customer
    currency: Currency
    total: Money
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_ITEMS)
    shipping_address: Address | None = None
    billing_address: Address | None = None

    @model_validator(mode="after")
    def _lines_are_consistent(self) -> OrderPlaced:
        ids = [line.line_id for line in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError("line_id must be unique within the order")
        ships = any(line.delivery is Delivery.SHIPMENT for line in self.lines)
        if ships and self.shipping_address is None:
            raise ValueError("shipping_address is required when any line is a shipment")
        return self


class PaymentCaptured(WireModel):
    payment_id: Identifier
    amount: Money
    currency: Currency
    method: OptionalText | None = None


class RequestedLine(WireModel):
    line_id: Identifier
    quantity: Quantity


class Shipment(WireModel):
    """The shipping agent and its airway bill / tracking number."""

    carrier: Text
    tracking_number: Text
    tracking_url: OptionalText | None = None


class Credentials(WireModel):
    # Out of repr: a debugging log line of an event must not carry its secrets.
    username: OptionalText | None = Field(default=None, repr=False)
    password: OptionalText | None = Field(default=None, repr=False)
    token: OptionalText | None = Field(default=None, repr=False)

    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Only what the merchant gave travels: a reader should not see `"token": null`.
        dumped: dict[str, Any] = handler(self)
        return {name: value for name, value in dumped.items() if value is not None}


class Distribution(WireModel):
    """Delivery of a digital line; credentials are sealed by the service before storage."""

    line_id: Identifier
    access_url: OptionalText | None = None
    credentials: Credentials | None = None
    instructions: OptionalText | None = None
    # Set by the service (encrypted credentials); never taken from input, never published.
    sealed_credentials: SkipJsonSchema[str | None] = None

    @model_serializer(mode="wrap")
    def _without_empty_seal(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The seal is internal: kept in the document while it holds a ciphertext, else absent.
        dumped: dict[str, Any] = handler(self)
        if dumped.get("sealed_credentials") is None:
            dumped.pop("sealed_credentials", None)
        return dumped


class FulfillmentRequested(WireModel):
    fulfillment_id: Identifier
    lines: list[RequestedLine] | None = Field(default=None, max_length=MAX_ITEMS)
    shipment: Shipment | None = None
    distributions: list[Distribution] | None = Field(default=None, max_length=MAX_ITEMS)
    shipping_address: Address | None = None
    requested_by: OptionalText | None = None


class FulfillmentCancelRequested(WireModel):
    fulfillment_id: Identifier
    reason: OptionalText | None = None


class OrderCancelRequested(WireModel):
    reason: OptionalText | None = None


class FulfillmentTrackingUpdated(WireModel):
    """New tracking data of a shipment (contract 1.1); the fields given replace the shipment's."""

    # The JSON Schema says what the validator below does: at least one of the three, not null.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("carrier", "tracking_number", "tracking_url")
            ]
        }
    )

    fulfillment_id: Identifier
    carrier: Text | None = None
    tracking_number: Text | None = None
    # "" removes the shipment's tracking link.
    tracking_url: OptionalText | None = None

    @model_validator(mode="after")
    def _gives_something(self) -> FulfillmentTrackingUpdated:
        if self.carrier is None and self.tracking_number is None and self.tracking_url is None:
            raise ValueError("give at least one of carrier, tracking_number, tracking_url")
        return self


class ShipmentStatusReported(WireModel):
    """A carrier's or partner's report of where a shipment is (contract 1.1)."""

    fulfillment_id: Identifier
    status: ShipmentStatus
    happened_at: Timestamp
    location: OptionalText | None = None
    note: OptionalText | None = None


InputData = (
    OrderPlaced
    | PaymentCaptured
    | FulfillmentRequested
    | FulfillmentCancelRequested
    | OrderCancelRequested
    | FulfillmentTrackingUpdated
    | ShipmentStatusReported
)

INPUT_DATA: dict[EventType, type[WireModel]] = {
    EventType.ORDER_PLACED: OrderPlaced,
    EventType.PAYMENT_CAPTURED: PaymentCaptured,
    EventType.FULFILLMENT_REQUESTED: FulfillmentRequested,
    EventType.FULFILLMENT_CANCEL_REQUESTED: FulfillmentCancelRequested,
    EventType.ORDER_CANCEL_REQUESTED: OrderCancelRequested,
    EventType.FULFILLMENT_TRACKING_UPDATED: FulfillmentTrackingUpdated,
    EventType.SHIPMENT_STATUS_REPORTED: ShipmentStatusReported,
}


@dataclass(frozen=True)
class Inbound:
    """A validated input event, as the lifecycle sees it."""

    id: str
    type: EventType
    order_id: str
    time: datetime
    data: InputData
    # The CloudEvents `source`; "" when unknown. Identity is (source, id), but the lifecycle
    # keeps idempotency on `id` alone and only makes an id reused by another source visible.
    source: str = ""


# ---- output data --------------------------------------------------------------------------


class FulfilledLine(WireModel):
    line_id: Identifier
    sku: Text
    quantity: Quantity


class FulfillmentCompleted(WireModel):
    order_id: Identifier
    order_number: Text
    fulfillment_id: Identifier
    lines: list[FulfilledLine]
    shipment: Shipment | None = None
    distributions: list[Distribution] | None = None
    order_status: OrderStatus
    # Contract 1.1, what a packing slip, an invoice or a buyer notification needs; the address
    # only when the fulfillment ships something, as it was when the fulfillment completed.
    customer: Customer | None = None
    delivery_address: Address | None = None


class CancelledLine(WireModel):
    """A line of a cancelled fulfillment; `sku` is null when the line_id is unknown."""

    line_id: Identifier
    sku: str | None
    quantity: int


class RevokedAccess(WireModel):
    """Access a provider should withdraw: a digital line and the link it was delivered with."""

    line_id: Identifier
    access_url: OptionalText | None = None


class FulfillmentCancelled(WireModel):
    order_id: Identifier
    order_number: Text | None
    fulfillment_id: Identifier
    reason: CancelReason
    detail: str
    previously_completed: bool
    lines: list[CancelledLine]
    order_status: OrderStatus | None
    # Contract 1.1: on undoing a fulfillment that delivered digital lines; never credentials.
    revoke_access: list[RevokedAccess] | None = None


class OrderStatusChanged(WireModel):
    order_id: Identifier
    order_number: Text | None
    from_status: OrderStatus | None
    to_status: OrderStatus
    payment_status: PaymentStatus


class FulfillmentShipmentUpdated(WireModel):
    """A completed shipment's tracking data or current status changed (contract 1.1)."""

    order_id: Identifier
    order_number: Text
    fulfillment_id: Identifier
    shipment: Shipment
    shipment_status: ShipmentStatus | None = None
    # When the current status was reported to have happened.
    happened_at: AwareDatetime | None = None
    delivery_status: DeliveryStatus


class HeldLine(WireModel):
    """A line of a held request, as requested; `sku` is null while the order is not placed."""

    line_id: Identifier
    sku: str | None
    quantity: int


class FulfillmentHeld(WireModel):
    """A fulfillment request waits, and why (contract 1.1); its completion or cancellation releases it."""

    order_id: Identifier
    order_number: Text | None
    fulfillment_id: Identifier
    reason: HoldReason
    # Empty when the request asked for every quantity still unfulfilled.
    lines: list[HeldLine]


OUTPUT_DATA: dict[EventType, type[WireModel]] = {
    EventType.FULFILLMENT_COMPLETED: FulfillmentCompleted,
    EventType.FULFILLMENT_CANCELLED: FulfillmentCancelled,
    EventType.ORDER_STATUS_CHANGED: OrderStatusChanged,
    EventType.FULFILLMENT_SHIPMENT_UPDATED: FulfillmentShipmentUpdated,
    EventType.FULFILLMENT_HELD: FulfillmentHeld,
}


def amount(money: str) -> Decimal:
    """A Money string as a Decimal, for arithmetic."""
    return Decimal(money)
