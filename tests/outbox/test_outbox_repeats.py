"""Nothing said for nothing: a post equal to what a channel last carried for its target is not
posted again, read back from what the channel double holds."""

from __future__ import annotations

import time

import pytest

from statusd.model import Level
from statusd.outbox.store import SENT, SKIPPED, SUPERSEDED, Store
from statusd.outbox.worker import Worker
from tests.outbox.test_outbox_promises import POLICY, Platform, drain, event, record
from tests.support.stores import facade

pytestmark = pytest.mark.unit


class TestNothingSaidForNothing:
    """A post equal to what the channel last carried for its target is not posted again."""

    async def test_the_same_text_after_a_superseded_change_is_skipped(self, store: Store) -> None:
        record(store, event("main/cafe", Level.CLOSED, "a"), "Café: closed", at=time.time() - 3)
        platform = Platform()
        await drain(Worker(facade(store), platform, POLICY))
        record(store, event("main/cafe", Level.OPEN, "b", previous=Level.CLOSED), "Café: open", at=time.time() - 2)
        record(store, event("main/cafe", Level.CLOSED, "c"), "Café: closed", at=time.time() - 1)
        await drain(Worker(facade(store), platform, POLICY))
        assert platform.texts() == ["Café: closed"]
        found = {(d.message.text, d.state) for _, _, ds in store.recent() for d in ds if d.message}
        assert found == {("Café: closed", SENT), ("Café: open", SUPERSEDED), ("Café: closed", SKIPPED)}

    async def test_the_same_text_after_a_different_post_is_posted(self, store: Store) -> None:
        platform = Platform()
        for rev, text in (("a", "Café: closed"), ("b", "Café: open"), ("c", "Café: closed")):
            record(store, event("main/cafe", Level.CLOSED, rev), text)
            await drain(Worker(facade(store), platform, POLICY))
        assert platform.texts() == ["Café: closed", "Café: open", "Café: closed"]
