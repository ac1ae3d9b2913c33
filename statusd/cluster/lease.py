"""Leadership by a lease row in PostgreSQL: renewed every second, expiring after five.

One row (`cluster_lease`, name 'leader') says which process sends to the channels,
until when (by the database's clock), and under which epoch; every takeover
(another holder, or the same one after its lease had lapsed) increments the epoch.

The node keeps its own count too, on its monotonic clock: the lease is taken as
held until the moment the renewal was *sent* plus the expiry, less a margin. A
node cut off from the database therefore stops sending before the row can expire
for anyone else, whatever the network does to the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog

from statusd import tasks

__all__ = ["Lease", "LeaseView"]

log = structlog.get_logger()

ACQUIRE = """
INSERT INTO cluster_lease AS l (name, holder, node, epoch, expires_at, acquired_at)
VALUES ('leader', %(holder)s, %(node)s, 1, clock_timestamp() + %(expiry)s * interval '1 second', clock_timestamp())
ON CONFLICT (name) DO UPDATE SET
    holder = EXCLUDED.holder, node = EXCLUDED.node, expires_at = EXCLUDED.expires_at,
    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > clock_timestamp()
                 THEN l.epoch ELSE l.epoch + 1 END,
    acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > clock_timestamp()
                       THEN l.acquired_at ELSE clock_timestamp() END
WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp()
RETURNING epoch
"""
CURRENT = "SELECT node, epoch, expires_at > clock_timestamp() FROM cluster_lease WHERE name = 'leader'"
RELEASE = "UPDATE cluster_lease SET expires_at = clock_timestamp() WHERE name = 'leader' AND holder = %s"


@dataclass(frozen=True)
class LeaseView:
    """What /readyz and `statusd show` say: who leads, and this node's part."""

    node: str
    leader: str | None
    epoch: int | None
    role: str  # "leader" or "follower"


class Lease:
    """Takes and renews the lease on a connection of its own; `held()` says whether to send."""

    def __init__(self, dsn: str, node: str, holder: str, *, expiry: float = 5.0, renew: float = 1.0,
                 margin: float = 1.5, on_change: Callable[[bool], None] | None = None) -> None:
        self.dsn = dsn
        self.node = node
        self.holder = holder
        self.expiry = expiry
        self.renew = renew
        self.margin = margin
        self.epoch: int | None = None
        self.leader: str | None = None
        self._valid_until = 0.0
        self._on_change = on_change or (lambda leading: None)
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._was_held = False
        self._exchange: asyncio.Task[Any] | None = None

    def held(self) -> bool:
        """Whether this node may send now (its own clock: the database's may be out of reach)."""
        return self.epoch is not None and time.monotonic() < self._valid_until

    def remaining(self) -> float:
        """Seconds this node may still send for, without another renewal."""
        return max(0.0, self._valid_until - time.monotonic()) if self.epoch is not None else 0.0

    def view(self) -> LeaseView:
        leading = self.held()
        # Not itself once its lease lapsed, whatever it last heard: who leads now it cannot tell yet.
        other = self.leader if self.leader != self.node else None
        return LeaseView(self.node, self.node if leading else other, self.epoch if leading else None,
                         "leader" if leading else "follower")

    async def run(self) -> None:
        """Try to take or renew the lease every `renew` seconds, for ever."""
        while True:
            started = time.monotonic()
            await self.step()
            await asyncio.sleep(max(0.0, self.renew - (time.monotonic() - started)))

    async def step(self) -> None:
        """One renewal (or attempt to take over); a database out of reach counts as not renewed.

        The exchange runs in a task of its own, given up after `renew` seconds without being
        awaited: on a dead network even cancelling a query waits for the server.
        """
        sent = time.monotonic()
        if self._exchange is not None and not self._exchange.done():
            self._settle()  # the last one still hangs: no second connection stacked on it
            return
        self._exchange = exchange = tasks.spawn(self._ask(), "lease-exchange")
        done, _ = await asyncio.wait({exchange}, timeout=self.renew)
        answer = exchange.result() if done else TimeoutError()
        if isinstance(answer, BaseException):
            log.warning("lease_renewal_failed", node=self.node, reason=type(answer).__name__,
                        held_for=round(self.remaining(), 2))
            self._settle()
            return
        if answer is not None:
            if answer != self.epoch:
                log.info("lease_acquired", node=self.node, epoch=answer)
            self.epoch, self.leader = answer, self.node
            self._valid_until = sent + self.expiry - self.margin
        elif self.epoch is not None:
            log.warning("lease_lost", node=self.node, epoch=self.epoch, leader=self.leader)
            self.epoch = None
        self._settle()

    async def _ask(self) -> int | BaseException | None:
        """The lease's epoch if this node holds it now; None if another does (named in `leader`);
        the error when the database could not be asked (the connection is then dropped)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=max(2, round(self.expiry)))
            conn = self._conn
            row = await (await conn.execute(ACQUIRE, {"holder": self.holder, "node": self.node,
                                                      "expiry": self.expiry})).fetchone()
            if row is not None:
                return int(str(row[0]))
            current = await (await conn.execute(CURRENT)).fetchone()
            self.leader = str(current[0]) if current and current[2] else None
            return None
        except (psycopg.Error, OSError) as err:
            broken, self._conn = self._conn, None
            if broken is not None:
                with contextlib.suppress(psycopg.Error, OSError):
                    await broken.close()
            return err

    def _settle(self) -> None:
        leading = self.held()
        if leading != self._was_held:
            self._was_held = leading
            if not leading:
                log.warning("lease_expired_locally", node=self.node, epoch=self.epoch)
            self._on_change(leading)

    async def release(self) -> None:
        """At a clean stop: let another node take over at once rather than after the expiry."""
        held, self.epoch, self._valid_until = self.held(), None, 0.0
        if not held or self._conn is None:
            return
        try:
            async with asyncio.timeout(1.0):
                await self._conn.execute(RELEASE, (self.holder,))
            log.info("lease_released", node=self.node)
        except (psycopg.Error, OSError, TimeoutError) as err:
            log.warning("lease_release_failed", node=self.node, reason=type(err).__name__)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

