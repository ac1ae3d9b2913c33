"""Hostile review of the facade: a store call that raises something other than a store error inside the
store thread (a delivery row garbled by hand, or by another version sharing the database) ended the
worker's task, and with it the daemon's TaskGroup. Now the channel waits and the store's trouble says why."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import structlog

from statusd.outbox.facade import AsyncStore
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.worker import Worker
from tests.outbox.test_outbox import POLICY, Recorder, event, record

pytestmark = pytest.mark.unit


async def test_garbled_delivery_keeps_the_worker_up(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "statusd.db")
    facade = AsyncStore(store)
    record(store, event())
    db = sqlite3.connect(tmp_path / "statusd.db")
    db.execute("UPDATE deliveries SET message = '{\"text\": garbled'")
    db.commit()
    channel = Recorder()
    worker = Worker(facade, channel, POLICY)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.5)
        assert not task.done(), f"the worker ended: {task.exception()!r}"
        assert facade.trouble == f"the store {store.label} holds a delivery of rec that cannot be read"
        # Repaired (the operator deleted or fixed the row): the trouble goes with the next look.
        db.execute("DELETE FROM deliveries")
        db.commit()
        worker.poke()
        await asyncio.sleep(2.5)
        assert facade.trouble is None
        worker.stop()
        await asyncio.wait_for(task, 5)
    db.close()
    await facade.close()
    assert channel.sent == []
    assert "store_unreadable" in [line["event"] for line in logs]
