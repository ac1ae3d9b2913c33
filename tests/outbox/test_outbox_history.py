"""The store keeps `delivery.history` and prunes the rest, never what is in force or still waiting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from statusd.model import Level
from statusd.outbox.store import Store
from tests.outbox.test_outbox_promises import event, record

pytestmark = pytest.mark.unit


class TestBoundedHistory:
    """The store keeps `delivery.history` of events and prunes the rest, never what is in force."""

    def test_old_events_are_pruned_but_the_one_in_force_is_kept(self, store: Store) -> None:
        day = 86400.0
        now = time.time()
        for number in range(5):  # one a day, the newest five days ago
            record(store, event("main", Level.CLOSED, f"old{number}"), f"old {number}", at=now - (9 - number) * day)
        record(store, event("annexe", Level.LIMITED, "recent"), "recent", at=now - day)
        for delivery in (store.next_due("rec"), store.next_due("rec")):
            assert delivery is not None
            store.mark_sent(delivery.id, f"r{delivery.id}", None)
        assert store.prune(keep=3 * day, now=now) == 4
        kept = [e.revision for e in store.newest_events(100)]
        # old4 is what main last said: kept whatever its age, as is the recent one.
        assert kept == ["recent", "old4"]
        assert store.prune(keep=3 * day, now=now) == 0

    def test_a_waiting_delivery_keeps_its_event(self, store: Store) -> None:
        record(store, event("main", Level.CLOSED, "a"), "a", at=time.time() - 10 * 86400)
        delivery = store.next_due("rec")
        assert delivery is not None
        store.mark_sending(delivery.id)  # in flight (or the daemon died mid-send)
        record(store, event("main", Level.OPEN, "b", previous=Level.CLOSED), "b", at=time.time() - 86400)
        assert store.prune(keep=3 * 86400.0) == 0
        assert [e.revision for e in store.newest_events(10)] == ["b", "a"]

    def test_the_history_key_is_read(self, tmp_path: Path) -> None:
        from statusd import loading as config_module
        from tests.conftest import ALERTS, BASE

        path = tmp_path / "statusd.yaml"
        text = BASE.format(alerts=ALERTS, channels="  console: {type: console, language: fr}", deadline="1h")
        path.write_text(text + "  history: 7d\n", encoding="utf-8")
        assert config_module.load(path).delivery.history == 7 * 86400
