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
from statusd import config as config_module
from statusd.config import Config
from statusd.errors import ConfigError, UserError
from statusd.model import Wanted
from statusd.notify import notify, watchdog
from statusd.outbox.store import Store
from statusd.outbox.worker import Worker
from statusd.paths import store_path
from statusd.sources import status_edit, status_file
from statusd.web.server import WebServer, WebState
from statusd.web.state import recent_events

log = structlog.get_logger()

MAX_SLEEP = 300.0


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_crashed", task=task.get_name(), error=repr(task.exception()))


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
        self.workers = {name: Worker(self.store, ch, config.delivery) for name, ch in self.channels.items()}
        self.web_state = WebState(config)
        self.web = WebServer(self.web_state, config.host, port)
        self.wanted: Wanted | None = None
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._signals = 0
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._reloading: asyncio.Task[None] | None = None
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
                self._group = group
                for name, worker in self.workers.items():
                    self._senders[name] = group.create_task(worker.run(), name=f"worker-{name}")
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
        """Learn each platform's limits, all at once and bounded in time.

        A platform that is down or slow now must not hold up the others or the
        start; its worker gets its chance when it sends.
        """
        async def open_one(name: str, channel: Channel) -> None:
            try:
                await asyncio.wait_for(channel.open(), timeout=self.config.delivery.timeout)
            except (ChannelError, asyncio.TimeoutError) as err:
                log.warning("channel_open_failed", channel=name, reason=str(err) or "timed out")

        await asyncio.gather(*(open_one(name, ch) for name, ch in self.channels.items()))

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload)

    def _on_reload(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self.reload())
            self._reloading.add_done_callback(_log_crash)

    async def reload(self) -> None:
        """Re-read config and templates; keep SSE clients, unchanged channels and every delivery.

        Deliveries live in the store, so a channel that is replaced picks up
        where the old one stopped.
        """
        notify("RELOADING=1")
        try:
            config = config_module.load(self.config.path)
        except ConfigError as err:
            log.error("config_reload_failed", problems=[str(p) for p in err.problems], kept="running config")
            notify("READY=1")
            return
        changed = [n for n in self.workers if config.channels.get(n) != self.config.channels.get(n)]
        await self._drain(changed)
        for name in changed:
            await self.channels.pop(name).close()
            del self.workers[name], self._senders[name]
        self.config = config
        for name in [n for n in config.channels if n not in self.channels]:
            self._start_channel(name, channel_class(config.channels[name].type)(config.channels[name], config.delivery))
        self.announcer = Announcer(config, self.store, Composer(config), self.channels)
        self._changed.set()
        notify("READY=1")
        log.info("config_reloaded", channels=sorted(self.channels), replaced=changed)

    def _start_channel(self, name: str, channel: Channel) -> None:
        self.channels[name] = channel
        self.workers[name] = worker = Worker(self.store, channel, self.config.delivery)
        assert self._group is not None
        self._senders[name] = self._group.create_task(worker.run(), name=f"worker-{name}")

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        # Only a second Ctrl-C forces: systemd and `timeout` may send SIGTERM twice.
        forced = self._signals > 1 and sig is signal.SIGINT
        log.info("shutdown_requested", signal=sig.name, forced=forced)
        self._stop.set()
        if forced:
            for task in self._senders.values():
                task.cancel()

    async def _drain(self, names: list[str] | None = None) -> None:
        """Let in-flight sends finish within the grace period; cancel the rest and count them."""
        names = list(self.workers) if names is None else names
        for name in names:
            self.workers[name].stop()
        tasks = [self._senders[name] for name in names if name in self._senders]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=self.config.delivery.grace)
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
            for worker in self.workers.values():
                worker.poke()
        self.web_state.update(self.wanted or {}, self.store.announced(), recent_events(self.store), now)
