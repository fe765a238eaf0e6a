"""Every name of the contract, defined once: topics, event types, statuses, reasons."""

from __future__ import annotations

from enum import StrEnum

SERVICE_SOURCE = "urn:fulfillment-pipeline"
DLQ_SUFFIX = ".dlq"


class Topic(StrEnum):
    ORDERS_PLACED = "orders.placed"
    PAYMENTS_CAPTURED = "payments.captured"
    FULFILLMENTS_REQUESTED = "fulfillments.requested"
    FULFILLMENTS_CANCEL_REQUESTED = "fulfillments.cancel-requested"
    ORDERS_CANCEL_REQUESTED = "orders.cancel-requested"
    FULFILLMENTS_COMPLETED = "fulfillments.completed"
    FULFILLMENTS_CANCELLED = "fulfillments.cancelled"
    ORDERS_STATUS_CHANGED = "orders.status-changed"

    @property
    def dlq(self) -> str:
        return f"{self.value}{DLQ_SUFFIX}"


class EventType(StrEnum):
    ORDER_PLACED = "order.placed"
    PAYMENT_CAPTURED = "payment.captured"
    FULFILLMENT_REQUESTED = "fulfillment.requested"
    FULFILLMENT_CANCEL_REQUESTED = "fulfillment.cancel_requested"
    ORDER_CANCEL_REQUESTED = "order.cancel_requested"
    FULFILLMENT_COMPLETED = "fulfillment.completed"
    FULFILLMENT_CANCELLED = "fulfillment.cancelled"
    ORDER_STATUS_CHANGED = "order.status_changed"


# Each topic carries exactly one type.
TOPIC_TYPE: dict[Topic, EventType] = {
    Topic.ORDERS_PLACED: EventType.ORDER_PLACED,
    Topic.PAYMENTS_CAPTURED: EventType.PAYMENT_CAPTURED,
    Topic.FULFILLMENTS_REQUESTED: EventType.FULFILLMENT_REQUESTED,
    Topic.FULFILLMENTS_CANCEL_REQUESTED: EventType.FULFILLMENT_CANCEL_REQUESTED,
    Topic.ORDERS_CANCEL_REQUESTED: EventType.ORDER_CANCEL_REQUESTED,
    Topic.FULFILLMENTS_COMPLETED: EventType.FULFILLMENT_COMPLETED,
    Topic.FULFILLMENTS_CANCELLED: EventType.FULFILLMENT_CANCELLED,
    Topic.ORDERS_STATUS_CHANGED: EventType.ORDER_STATUS_CHANGED,
}
TYPE_TOPIC: dict[EventType, Topic] = {event_type: topic for topic, event_type in TOPIC_TYPE.items()}
INPUT_TOPICS: tuple[Topic, ...] = (
    Topic.ORDERS_PLACED,
    Topic.PAYMENTS_CAPTURED,
    Topic.FULFILLMENTS_REQUESTED,
    Topic.FULFILLMENTS_CANCEL_REQUESTED,
    Topic.ORDERS_CANCEL_REQUESTED,
)
OUTPUT_TOPICS: tuple[Topic, ...] = (
    Topic.FULFILLMENTS_COMPLETED,
    Topic.FULFILLMENTS_CANCELLED,
    Topic.ORDERS_STATUS_CHANGED,
)


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    UNFULFILLED = "unfulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"


class FulfillmentStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Delivery(StrEnum):
    SHIPMENT = "shipment"
    DIGITAL = "digital"


class CancelReason(StrEnum):
    """Why a fulfillment was refused, withdrawn or undone (`fulfillment.cancelled`)."""

    INVALID_REQUEST = "invalid_request"
    ORDER_CANCELLED = "order_cancelled"
    CANCEL_REQUESTED = "cancel_requested"


class DeadLetterReason(StrEnum):
    """The `x-dlq-reason` header: why an input message could not be used."""

    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_CLOUDEVENT = "not_cloudevent"
    WRONG_TYPE = "wrong_type"
    INVALID_DATA = "invalid_data"
    KEY_MISMATCH = "key_mismatch"
    # Contract 1.1: the record or what it would cause is above a size limit (schemas/limits.py).
    TOO_LARGE = "too_large"
    # Contract 1.1: the record failed for a reason of its own that no other code names.
    PROCESSING_FAILED = "processing_failed"


class DeadLetterHeader(StrEnum):
    """Headers a dead letter carries beside the original record's own."""

    REASON = "x-dlq-reason"
    ERROR = "x-dlq-error"
    ORIGINAL_TOPIC = "x-original-topic"
    ORIGINAL_PARTITION = "x-original-partition"
    ORIGINAL_OFFSET = "x-original-offset"
    # Contract 1.1: the letter was too large for the broker; its value (this many bytes) was dropped.
    VALUE_OMITTED = "x-dlq-value-omitted"
    # Extension: how often `fulfillment dlq replay` sent this letter back to its topic.
    REPLAYS = "x-dlq-replays"


class TimelineType(StrEnum):
    """Kinds of timeline entries beyond the input and output event types."""

    FULFILLMENT_PENDING = "fulfillment.pending"
    FULFILLMENT_DUPLICATE = "fulfillment.duplicate_ignored"
    FULFILLMENT_CANCEL_REMEMBERED = "fulfillment.cancel_remembered"
    FULFILLMENT_CANCEL_IGNORED = "fulfillment.cancel_ignored"
    ORDER_CANCEL_REFUSED = "order.cancel_refused"
    ORDER_CANCEL_IGNORED = "order.cancel_ignored"
    ORDER_PLACED_IGNORED = "order.placed_ignored"
    PAYMENT_DUPLICATE = "payment.duplicate_ignored"
    PAYMENT_NOT_COUNTED = "payment.not_counted"
    SHIPPING_ADDRESS_CHANGED = "order.shipping_address_changed"
    # An event id already applied from another source: not applied again, but made visible.
    EVENT_ID_REUSED = "event.id_reused_by_other_source"
