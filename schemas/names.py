"""Every name of the contract, defined once: topics, event types, statuses, reasons."""

from __future__ import annotations

from enum import StrEnum

# The version of the event contract this code implements (docs/contract.md).
CONTRACT_VERSION = "1.1"
SERVICE_SOURCE = "urn:fulfillment-pipeline"
DLQ_SUFFIX = ".dlq"


class Topic(StrEnum):
    ORDERS_PLACED = "orders.placed"
    PAYMENTS_CAPTURED = "payments.captured"
    FULFILLMENTS_REQUESTED = "fulfillments.requested"
    FULFILLMENTS_CANCEL_REQUESTED = "fulfillments.cancel-requested"
    ORDERS_CANCEL_REQUESTED = "orders.cancel-requested"
    FULFILLMENTS_TRACKING_UPDATED = "fulfillments.tracking-updated"
    SHIPMENTS_STATUS_REPORTED = "shipments.status-reported"
    FULFILLMENTS_COMPLETED = "fulfillments.completed"
    FULFILLMENTS_CANCELLED = "fulfillments.cancelled"
    ORDERS_STATUS_CHANGED = "orders.status-changed"
    FULFILLMENTS_SHIPMENT_UPDATED = "fulfillments.shipment-updated"
    FULFILLMENTS_HELD = "fulfillments.held"

    @property
    def dlq(self) -> str:
        return f"{self.value}{DLQ_SUFFIX}"


class EventType(StrEnum):
    ORDER_PLACED = "order.placed"
    PAYMENT_CAPTURED = "payment.captured"
    FULFILLMENT_REQUESTED = "fulfillment.requested"
    FULFILLMENT_CANCEL_REQUESTED = "fulfillment.cancel_requested"
    ORDER_CANCEL_REQUESTED = "order.cancel_requested"
    FULFILLMENT_TRACKING_UPDATED = "fulfillment.tracking_updated"
    SHIPMENT_STATUS_REPORTED = "shipment.status_reported"
    FULFILLMENT_COMPLETED = "fulfillment.completed"
    FULFILLMENT_CANCELLED = "fulfillment.cancelled"
    ORDER_STATUS_CHANGED = "order.status_changed"
    FULFILLMENT_SHIPMENT_UPDATED = "fulfillment.shipment_updated"
    FULFILLMENT_HELD = "fulfillment.held"


# Each topic carries exactly one type.
TOPIC_TYPE: dict[Topic, EventType] = {
    Topic.ORDERS_PLACED: EventType.ORDER_PLACED,
    Topic.PAYMENTS_CAPTURED: EventType.PAYMENT_CAPTURED,
    Topic.FULFILLMENTS_REQUESTED: EventType.FULFILLMENT_REQUESTED,
    Topic.FULFILLMENTS_CANCEL_REQUESTED: EventType.FULFILLMENT_CANCEL_REQUESTED,
    Topic.ORDERS_CANCEL_REQUESTED: EventType.ORDER_CANCEL_REQUESTED,
    Topic.FULFILLMENTS_TRACKING_UPDATED: EventType.FULFILLMENT_TRACKING_UPDATED,
    Topic.SHIPMENTS_STATUS_REPORTED: EventType.SHIPMENT_STATUS_REPORTED,
    Topic.FULFILLMENTS_COMPLETED: EventType.FULFILLMENT_COMPLETED,
    Topic.FULFILLMENTS_CANCELLED: EventType.FULFILLMENT_CANCELLED,
    Topic.ORDERS_STATUS_CHANGED: EventType.ORDER_STATUS_CHANGED,
    Topic.FULFILLMENTS_SHIPMENT_UPDATED: EventType.FULFILLMENT_SHIPMENT_UPDATED,
    Topic.FULFILLMENTS_HELD: EventType.FULFILLMENT_HELD,
}
TYPE_TOPIC: dict[EventType, Topic] = {event_type: topic for topic, event_type in TOPIC_TYPE.items()}
INPUT_TOPICS: tuple[Topic, ...] = (
    Topic.ORDERS_PLACED,
    Topic.PAYMENTS_CAPTURED,
    Topic.FULFILLMENTS_REQUESTED,
    Topic.FULFILLMENTS_CANCEL_REQUESTED,
    Topic.ORDERS_CANCEL_REQUESTED,
    Topic.FULFILLMENTS_TRACKING_UPDATED,
    Topic.SHIPMENTS_STATUS_REPORTED,
)
OUTPUT_TOPICS: tuple[Topic, ...] = (
    Topic.FULFILLMENTS_COMPLETED,
    Topic.FULFILLMENTS_CANCELLED,
    Topic.ORDERS_STATUS_CHANGED,
    Topic.FULFILLMENTS_SHIPMENT_UPDATED,
    Topic.FULFILLMENTS_HELD,
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


class ShipmentStatus(StrEnum):
    """Where a shipment is (contract 1.1); the order of this list breaks ties on `happened_at`."""

    HANDED_OVER = "handed_over"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    RETURNED = "returned"

    @property
    def rank(self) -> int:
        """Position in the contract's list: of two reports at the same time, the higher is current."""
        return list(ShipmentStatus).index(self)


class DeliveryStatus(StrEnum):
    """How much of an order reached the buyer (contract 1.1), derived from its fulfillments."""

    NONE = "none"
    PARTIALLY_DELIVERED = "partially_delivered"
    DELIVERED = "delivered"


class HoldReason(StrEnum):
    """Why a fulfillment request waits (`fulfillment.held`)."""

    AWAITING_ORDER = "awaiting_order"
    AWAITING_PAYMENT = "awaiting_payment"


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
    # Extension: even its key and these headers were too large; the key (this many bytes) was
    # dropped too.
    KEY_OMITTED = "x-dlq-key-omitted"
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
    # Contract 1.1: news of a shipment that has not completed yet, kept until it does.
    TRACKING_UPDATE_REMEMBERED = "fulfillment.tracking_update_remembered"
    STATUS_REPORT_REMEMBERED = "shipment.status_report_remembered"
    # Contract 1.1: news of a fulfillment that is cancelled or digital-only, now or later.
    TRACKING_UPDATE_REFUSED = "fulfillment.tracking_update_refused"
    STATUS_REPORT_REFUSED = "shipment.status_report_refused"
    DELIVERY_STATUS_CHANGED = "order.delivery_status_changed"
