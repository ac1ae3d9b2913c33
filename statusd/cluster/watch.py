"""The wanted status for a daemon in a cluster: PostgreSQL rows, heard of by LISTEN/NOTIFY.

It stands in for the status file's watcher (`StatusWatch`) with the same surface:
`wanted`, `load`, `tasks`, `submit`, `reconcile`, `changed`. A change made on any
node (the desk, `statusd set`, a fire panel's push) is committed with a NOTIFY; every
node re-reads the rows at once and calls `step`. A notice from the store (the leader
recorded events) only refreshes the public picture. After a lost connection the rows
are read again whole, since notices sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import psycopg
import structlog

from statusd import metrics
from statusd.cluster.schema import STORE_CHANNEL
from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.model import StatusEntry, Target, Wanted
from statusd.sources.status.rows import CHANNEL, WantedRows

__all__ = ["ClusterWatch"]

log = structlog.get_logger()

Step = Callable[[Wanted | None], float]
POLL = 5.0  # the safety net: rows read again this often, notices or not
RECONNECT = 0.5
WRITE_RETRY = 1.0


class ClusterWatch:
    """Keeps `wanted` equal to the rows (plus pushes not yet written) and calls `step` on each change."""

    def __init__(self, config: Config, dsn: str, step: Step, fallback: Callable[[], Wanted],
                 refresh: Callable[[], Awaitable[None]]) -> None:
        self.config = config
        self.dsn = dsn
        self.rows = WantedRows(config, dsn, keep=True)
        self._step = step
        self._fallback = fallback
        self._refresh = refresh
        self._from_rows: Wanted | None = None
        self._pending: dict[Target, StatusEntry] = {}
        self._changed = asyncio.Event()
        self._to_write = asyncio.Event()
        self.next_wake = 300.0
        self.read_ok = False

    @property
    def wanted(self) -> Wanted | None:
        if self._from_rows is None:
            return None
        return {**self._from_rows, **self._pending}

    def changed(self) -> None:
        self._changed.set()

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        return [self._listen(), self._loop(), self._write()]

    async def load(self) -> None:
        await self._read()
        if self._from_rows is None:
            self._from_rows = self._fallback()
            log.error("wanted_rows_unusable_at_start", kept="last good status from the store",
                      targets=len(self._from_rows))

    def submit(self, target: Target, entry: StatusEntry) -> None:
        """A building system's change: in force and announced here now, written to the rows for all."""
        self._pending[target] = entry
        self.next_wake = self._step(self.wanted)
        self._changed.set()
        self._to_write.set()

    async def reconcile(self) -> None:
        await self._read()
        await self._refresh()  # the public picture first: every node shows a change at once
        self.next_wake = self._step(self.wanted)

    async def _read(self) -> None:
        try:
            self._from_rows = await asyncio.to_thread(self.rows.read)
            self.read_ok = True
        except ConfigError as err:
            metrics.STATUS_FILE_ERRORS.inc()
            log.error("wanted_rows_invalid", problems=[str(p) for p in err.problems[:10]], kept="last good status")
        except UserError as err:
            log.error("wanted_rows_unreachable", reason=str(err), kept="last good status")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.next_wake
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(max(due - loop.time(), 0.0), POLL))
            except TimeoutError:
                pass
            self._changed.clear()
            await self.reconcile()
            due = loop.time() + self.next_wake

    async def _listen(self) -> None:
        """LISTEN on both channels; a notice wakes the reconciler or refreshes the web."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True,
                                                                 connect_timeout=5) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {STORE_CHANNEL}")
                    self._changed.set()  # whatever was said while we were not listening
                    async for notice in conn.notifies():
                        if notice.channel == CHANNEL:
                            self._changed.set()
                        else:
                            await self._refresh()  # notices arriving meanwhile wait: coalesced
            except (psycopg.Error, OSError) as err:
                log.warning("cluster_listen_lost", reason=type(err).__name__, retry_in=RECONNECT)
            await asyncio.sleep(RECONNECT)

    async def _write(self) -> None:
        """Write each push into the rows (so every node has it), retried until it is."""
        while True:
            await self._to_write.wait()
            self._to_write.clear()
            for target, entry in list(self._pending.items()):
                try:
                    # Not over a change made after the push (a desk flip while the link was down).
                    written = await asyncio.to_thread(self.rows.set_unless_newer, target, entry)
                except UserError as err:
                    log.error("status_push_not_written", target=str(target), reason=str(err))
                    asyncio.get_running_loop().call_later(WRITE_RETRY, self._to_write.set)
                    continue
                if self._pending.get(target) is entry:
                    del self._pending[target]
                    if written:
                        self._from_rows = {**(self._from_rows or {}), target: entry}
                    else:  # the newer row stands: read it, and announce it, as any change of the rows
                        log.warning("status_push_superseded", target=str(target))
                        self._changed.set()
