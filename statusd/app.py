"""Builds the pipeline in order, runs it, and shuts it down in order on a signal."""

from __future__ import annotations

import asyncio
import signal
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import structlog
from watchfiles import awatch

from statusd.announcer import Announcer
from statusd.channels import Channel, ChannelError, channel_class
from statusd.compose import Composer
from statusd.config import Config
from statusd.errors import ConfigError, UserError
from statusd.model import Wanted
from statusd.notify import notify, watchdog
from statusd.outbox.store import Store
from statusd.outbox.worker import Worker
from statusd.paths import store_path
from statusd.sources import status_edit, status_file
from statusd.web.server import WebServer, WebState
from statusd.web.snapshot import snapshot

log = structlog.get_logger()

MAX_SLEEP = 300.0


def build_channels(config: Config) -> dict[str, Channel]:
    """One client per configured, active channel."""
    return {name: channel_class(c.type)(c, config.delivery) for name, c in config.channels.items()}


class App:
    """The daemon: status file → announcer → outbox workers → channels, plus the web server."""

    def __init__(self, config: Config, state_dir: Path, port: int) -> None:
        self.config = config
        self.store = Store(store_path(state_dir))
        self.channels = build_channels(config)
        self.announcer = Announcer(config, self.store, Composer(config), self.channels)
        self.workers = [Worker(self.store, channel, config.delivery) for channel in self.channels.values()]
        self.web_state = WebState()
        self.web = WebServer(self.web_state, config.host, port)
        self.wanted: Wanted | None = None
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._signals = 0
        self._senders: list[asyncio.Task[None]] = []
        self._next_wake: float = MAX_SLEEP

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the exit code."""
        for name, reason in self.config.inactive.items():
            log.warning("channel_inactive", channel=name, reason=reason)
        await self._open_channels()
        self._reconcile()
        await self.web.start()
        self._install_signals()
        # Ready only now: config, store and web server are up.
        notify("READY=1")
        log.info("daemon_started", channels=sorted(self.channels), port=self.web.port)
        try:
            async with asyncio.TaskGroup() as group:
                self._senders = [group.create_task(w.run(), name=f"worker-{w.channel.name}") for w in self.workers]
                watcher = group.create_task(self._watch(), name="watch-status")
                ticker = group.create_task(self._loop(), name="reconcile")
                pinger = group.create_task(watchdog(), name="watchdog")
                await self._stop.wait()
                notify("STOPPING=1")
                pinger.cancel()
                # Stop taking changes first, then let in-flight sends finish.
                watcher.cancel()
                ticker.cancel()
                await self._drain()
        finally:
            await self._close()
        return 0

    async def _open_channels(self) -> None:
        """Learn each platform's limits; a platform that is down now is retried by its worker."""
        for name, channel in self.channels.items():
            try:
                await channel.open()
            except ChannelError as err:
                log.warning("channel_open_failed", channel=name, reason=str(err))

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        # Only a second Ctrl-C forces: systemd and `timeout` may send SIGTERM twice.
        forced = self._signals > 1 and sig is signal.SIGINT
        log.info("shutdown_requested", signal=sig.name, forced=forced)
        self._stop.set()
        if forced:
            for task in self._senders:
                task.cancel()

    async def _drain(self) -> None:
        """Let in-flight sends finish within the grace period; cancel the rest and count them."""
        for worker in self.workers:
            worker.stop()
        if not self._senders:
            return
        done, pending = await asyncio.wait(self._senders, timeout=self.config.delivery.grace)
        for task in pending:
            task.cancel()
        log.info("workers_stopped", finished=len(done), cancelled=len(pending))

    async def _close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        await self.web.stop()
        self.store.close()
        log.info("daemon_stopped")

    async def _watch(self) -> None:
        """React to every change of status.yaml, including replace-by-rename and delete."""
        path = self.config.status_file.resolve()
        # A low debounce: the default 1.6 s would make a flip feel slow.
        async for changes in awatch(path.parent, debounce=100, step=50, recursive=False):
            if any(Path(p).name == path.name for _, p in changes):
                self._changed.set()

    async def _loop(self) -> None:
        """Reconcile on every change, and when a planned time comes."""
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=self._next_wake)
            except asyncio.TimeoutError:
                pass
            self._changed.clear()
            self._reconcile()

    def _reconcile(self) -> None:
        """Read status.yaml and compare it with the store, under the file's shared lock.

        `statusd undo` changes both under the exclusive lock: reading them
        together means the daemon never sees one without the other.
        """
        with ExitStack() as stack:
            try:
                stack.enter_context(status_edit.locked(self.config.status_file, exclusive=False))
            except UserError as err:  # the lock file cannot be made: read without it
                log.warning("status_lock_unavailable", reason=str(err))
            self._load_status()
            self._step()

    def _load_status(self) -> None:
        try:
            self.wanted = status_file.read(self.config.status_file, self.config)
        except ConfigError as err:
            log.error(
                "status_file_invalid", file=str(self.config.status_file),
                problems=[str(p) for p in err.problems], kept="last good status",
            )

    def _step(self) -> None:
        """Reconcile, record, wake the workers and refresh the public snapshot."""
        now = datetime.now(timezone.utc)
        if self.wanted is not None:
            plan = self.announcer.step(self.wanted, now)
            # Look again at least every few minutes, in case the clock jumped.
            wake = (plan.wake_at - now).total_seconds() + 0.05 if plan.wake_at else MAX_SLEEP
            self._next_wake = min(max(wake, 0.0), MAX_SLEEP)
            for worker in self.workers:
                worker.poke()
        self.web_state.publish(snapshot(self.config, self.wanted or {}, self.store.announced(), now))
