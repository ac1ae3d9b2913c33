"""status.yaml is read and written on a thread of the daemon's own (thread.py), not the loop's shared pool.

The shared pool resolves every channel's host name: with the resolver down, each worker
waits out its lookup. A read of status.yaml queued behind them held the file's shared
lock all that while, and every `statusd set` waited for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from statusd import files, loading
from statusd.model import Level, Target
from statusd.sources.status import nudge
from statusd.sources.status.watch import StatusWatch
from tests.conftest import WriteConfig

pytestmark = pytest.mark.unit


@pytest.fixture
async def stuck_pool() -> AsyncIterator[None]:
    """The loop's default pool, its one worker held as by a DNS lookup that does not come back."""
    loop = asyncio.get_running_loop()
    release = threading.Event()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    stuck = loop.run_in_executor(None, release.wait, 60)
    yield
    release.set()
    await stuck


async def test_a_change_is_read_while_the_shared_pool_is_stuck(write_config: WriteConfig, stuck_pool: None) -> None:
    config = loading.load(write_config())
    status = StatusWatch(config, lambda wanted: 300.0, dict)
    await asyncio.wait_for(status.load(), 10)
    whole = "main:\n  level: closed\n  message: Fermé\n"
    files.write_atomic(config.status_file, whole.encode())
    status.written_whole(nudge.digest(whole))
    await asyncio.wait_for(status.reconcile(), 10)
    assert status.wanted is not None and status.wanted[Target("main")].level is Level.CLOSED
