"""The desk's storage tests run on both engines (tests/support/stores.py)."""

from tests.support.stores import desk_tables, open_desk, store_kind  # noqa: F401 (fixtures)
