"""The store hands out a document it saved itself only while it is still the stored version."""

from __future__ import annotations

from schemas.document import OrderDocument
from store.orders import SavedOrders


def order(order_id: str, version: int) -> OrderDocument:
    return OrderDocument(_id=order_id, version=version)


def test_a_saved_document_is_handed_out_once_at_its_stored_version() -> None:
    saved = SavedOrders()
    kept = order("a", 3)
    saved.keep([kept])
    assert saved.take({"a": 3}) == {"a": kept}
    assert saved.take({"a": 3}) == {}  # the caller owns it now


def test_a_document_someone_else_saved_since_is_never_handed_out() -> None:
    saved = SavedOrders()
    saved.keep([order("a", 3)])
    assert saved.take({"a": 4}) == {}
    assert saved.take({"a": 3}) == {}  # and it is forgotten


def test_the_oldest_saved_documents_are_forgotten_beyond_capacity() -> None:
    saved = SavedOrders(capacity=2)
    saved.keep([order("a", 1), order("b", 1), order("c", 1)])
    assert set(saved.take({"a": 1, "b": 1, "c": 1})) == {"b", "c"}
