"""The outbox tests run on both stores (tests/support/stores.py)."""

from tests.support.stores import new_store, store, store_config, store_kind  # noqa: F401 (fixtures)
