"""The store hands out a document it saved itself only while it is still the stored one."""

from __future__ import annotations

from schemas.document import OrderDocument
from store.orders import SavedOrders


def order(order_id: str, version: int) -> OrderDocument:
    return OrderDocument(_id=order_id, version=version)


def test_a_saved_document_is_handed_out_once_at_its_stored_version_and_token() -> None:
    saved = SavedOrders()
    kept = order("a", 3)
    saved.keep([kept], "t1")
    assert saved.take({"a": (3, "t1")}) == {"a": kept}
    assert saved.take({"a": (3, "t1")}) == {}  # the caller owns it now


def test_a_document_someone_else_saved_since_is_never_handed_out() -> None:
    saved = SavedOrders()
    saved.keep([order("a", 3)], "t1")
    assert saved.take({"a": (4, "t2")}) == {}
    assert saved.take({"a": (3, "t1")}) == {}  # and it is forgotten


def test_another_write_at_the_same_version_is_never_mistaken_for_ours() -> None:
    # Our write at version 3 rolled back (a failover) and another worker wrote version 3.
    saved = SavedOrders()
    saved.keep([order("a", 3)], "ours")
    assert saved.take({"a": (3, "theirs")}) == {}
    assert saved.take({"a": (3, None)}) == {}


def test_the_oldest_saved_documents_are_forgotten_beyond_capacity() -> None:
    saved = SavedOrders(capacity=2)
    saved.keep([order("a", 1), order("b", 1), order("c", 1)], "t")
    assert set(saved.take({"a": (1, "t"), "b": (1, "t"), "c": (1, "t")})) == {"b", "c"}
