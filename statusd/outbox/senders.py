"""The channels and their workers: started together, changed on reload, drained on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import structlog

from statusd import tasks
from statusd.channels import build_channel
from statusd.channels.base import Channel, ChannelError
from statusd.config.load import Config
from statusd.outbox.budget import budget_for
from statusd.outbox.checkpoints import Checkpoints
from statusd.outbox.facade import AsyncStore
from statusd.outbox.gate import Gate
from statusd.outbox.handout import Reservation, hand_out
from statusd.outbox.records import STORE_ERRORS
from statusd.outbox.worker import Worker
from statusd.sources.status import inotify

log = structlog.get_logger()

# How often the store is checked for changes made by another program (`statusd
# retract`, `undo`): well under the second those must act within.
WATCH_EVERY = 0.4
PRUNE_EVERY = 3600.0
# inotify cannot tell our own commits from another program's, and a fan-out makes one per
# delivery: a wake waits this long, so a burst of them costs one look (not a hop each).
QUIET = 0.05


def build_channels(config: Config) -> dict[str, Channel]:
    """One client per configured, active channel."""
    return {name: build_channel(c, config.delivery) for name, c in config.channels.items()}


class Senders:
    """Every channel with the worker that delivers to it, each in its own task."""

    def __init__(self, config: Config, store: AsyncStore, state_dir: Path, gate: Gate | None = None) -> None:
        self.config = config
        self.store = store
        self.state_dir = state_dir
        self.gate = gate  # in a cluster, the lease: only its holder sends
        self.channels = build_channels(config)
        self.workers = {name: Worker(store, ch, config.delivery, budget_for(config.channels[name], ch), gate)
                        for name, ch in self.channels.items()}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._watch: asyncio.Task[None] | None = None
        # A SQLite store's log is copied into its file soon after each change, off the store's thread.
        path: Path | None = getattr(store.sync, "path", None)
        self.checkpoints = None if path is None else Checkpoints(path)

    async def open(self, names: Iterable[str] | None = None) -> None:
        """Learn each platform's limits, all at once and bounded in time.

        A platform that is down or slow now must not hold up the others or the
        start; its worker gets its chance when it sends.
        """
        chosen = list(self.channels) if names is None else list(names)
        await asyncio.gather(*(self._open(name) for name in chosen))

    async def _open(self, name: str) -> None:
        if keep := getattr(self.channels[name], "keep_sessions", None):
            keep(self.state_dir)  # a login kept in the state directory survives restarts
        try:
            await asyncio.wait_for(self.channels[name].open(), timeout=self.config.delivery.timeout)
        except (TimeoutError, ChannelError) as err:
            log.warning("channel_open_failed", channel=name, reason=str(err) or "timed out")

    def start(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        for name in self.workers:
            self._spawn(name)
        self._watch = group.create_task(self._watch_store(), name="store-watch")

    async def _watch_store(self) -> None:
        """Wake the workers when another program changed the store; prune old history hourly
        (and truncate the write-ahead log).

        `statusd retract` of an update no longer in force changes only the store,
        not status.yaml: without this its deletions would wait for a worker's
        next timer. Another program's commit writes the write-ahead log: inotify
        says so, and an idle daemon sleeps until then (or the hourly pruning);
        without inotify the store is looked at every WATCH_EVERY.
        """
        loop = asyncio.get_running_loop()
        seen, pruned = None, 0.0
        changed = asyncio.Event()
        # Only a SQLite store is a file another program's commit touches; PostgreSQL is looked at every WATCH_EVERY.
        path: Path | None = getattr(self.store.sync, "path", None)
        found = None if path is None else inotify.watch(path, changed.set, also=(f"{path.name}-wal",))
        every = WATCH_EVERY if found is None else PRUNE_EVERY
        try:
            while True:
                changed.clear()  # before looking: a commit while we look wakes the next wait
                try:
                    if loop.time() >= pruned:
                        pruned = loop.time() + PRUNE_EVERY
                        await self.prune()
                    version = await self.store.data_version()
                    if seen is not None and version != seen:
                        self.poke()
                    seen = version
                except STORE_ERRORS as err:
                    log.error("store_unavailable", reason=str(err), store=self.store.label)
                if await tasks.wait_event(changed, min(every, max(pruned - loop.time(), 0.0))):
                    await asyncio.sleep(QUIET)
                    if self.checkpoints is not None:  # the log changed: ours or another program's commit
                        self.checkpoints.soon()
        finally:
            if found is not None:
                found.close()

    async def prune(self) -> int:
        """Forget events older than `delivery.history`, a batch per call of the store."""
        total = 0
        while (count := await self.store.prune(self.config.delivery.history)) > 0:
            total += count
        if total:
            log.info("store_pruned", events=total, older_than_days=round(self.config.delivery.history / 86400, 1))
        # A SQLite store's log is emptied by the checkpoint thread, never two checkpoints at once.
        await (self.store.checkpoint() if self.checkpoints is None else self.checkpoints.truncate())
        return total

    def _spawn(self, name: str) -> None:
        assert self._group is not None
        self._tasks[name] = self._group.create_task(self.workers[name].run(), name=f"worker-{name}")

    def poke(self, reservation: Reservation | None = None) -> asyncio.Task[None] | None:
        """New deliveries may be due: the idle workers are handed theirs, a few store calls for all.

        `reservation`: those reserved before the step (`reserve`), perhaps with their first
        batch already taken. A busy worker looks again itself once its send is done. Returns
        the task handing them out (done once every idle worker has its delivery), if any.
        """
        if reservation is None:
            reservation = self.reserve()
        hand = None if reservation is None else tasks.spawn(hand_out(self.store, reservation), "hand-deliveries")
        for worker in self.workers.values():
            if worker.handed is None:
                worker.poke()
        return hand

    def release(self, reservation: Reservation | None) -> asyncio.Task[None] | None:
        """The step that reserved them failed: the workers look themselves when they next wake (or
        get what the batches already asked for took: marked `sending`, they must be sent; the task
        handing them is returned)."""
        if reservation is not None and reservation.calls is not None:
            return tasks.spawn(hand_out(self.store, reservation), "hand-deliveries")
        if reservation is not None:
            reservation.release()
        return None

    def reserve(self) -> Reservation | None:
        """The idle workers, reserved for the next hand-out (none in a cluster without the lease)."""
        idle = [w for w in self.workers.values() if w.parked and w.handed is None and not w.stopping]
        if not idle or (self.gate is not None and not self.gate.held()):
            return None
        return Reservation(idle)

    def cancel(self) -> None:
        """A forced stop: in-flight sends are cut short (the store knows to check them)."""
        for task in self._tasks.values():
            task.cancel()
        self._stop_watching()

    def _stop_watching(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    async def drain(self, names: Iterable[str] | None = None) -> None:
        """Let in-flight sends finish within the grace period; cancel the rest and count them."""
        if names is None:
            self._stop_watching()
        chosen = list(self.workers) if names is None else list(names)
        for name in chosen:
            self.workers[name].stop()
        tasks = [self._tasks[name] for name in chosen if name in self._tasks]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=self.config.delivery.grace)
        for task in pending:
            task.cancel()
        log.info("workers_stopped", finished=len(done), cancelled=len(pending))

    async def replace(self, config: Config) -> list[str]:
        """Take a new config: channels whose settings changed are drained and rebuilt.

        Deliveries live in the store, so a rebuilt channel picks up where the
        old one stopped. Returns the names of the channels replaced or removed.
        """
        changed = [n for n in self.channels if config.channels.get(n) != self.config.channels.get(n)]
        await self.drain(changed)
        for name in changed:
            await self.channels.pop(name).close()
            del self.workers[name]
            self._tasks.pop(name, None)
        self.config = config
        added = [n for n in config.channels if n not in self.channels]
        for name in added:
            self.channels[name] = build_channel(config.channels[name], config.delivery)
            self.workers[name] = Worker(self.store, self.channels[name], config.delivery,
                                        budget_for(config.channels[name], self.channels[name]), self.gate)
        await self.open(added)
        for name in added:
            self._spawn(name)
        return changed

    async def close(self) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.close()
        for channel in self.channels.values():
            await channel.close()
