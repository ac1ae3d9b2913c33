"""Builds the pipeline in order, runs it, and shuts it down in order on a signal."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Coroutine, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from watchfiles import awatch

from statusd import metrics
from statusd.announcer import Announcer
from statusd.compose import Composer
from statusd.config import load as config_module
from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.events import AUTOMATIC
from statusd.intake import Intake
from statusd.model import Wanted
from statusd.notify import notify, watchdog
from statusd.outbox.senders import Senders
from statusd.outbox.store import Store
from statusd.paths import store_path
from statusd.sensors.state import Sensors
from statusd.sources.feeds.config import feeds_tasks
from statusd.sources.feeds.http import add_routes
from statusd.sources.readings import Reading
from statusd.sources.status import edit as status_edit
from statusd.sources.status import file as status_file
from statusd.web.server import WebServer, WebState
from statusd.web.state import recent_events

__all__ = ["App"]

log = structlog.get_logger()

MAX_SLEEP = 300.0
STAT_EVERY = 5.0
STORE_RETRY = 2.0
SENSOR_TICK = 30.0
# Sensor readings change the public picture often; publish it at most this often.
WEB_COALESCE = 0.5


class App:
    """The daemon: status file and feeds → rules → announcer → outbox workers → channels, and the web."""

    def __init__(self, config: Config, state_dir: Path, port: int) -> None:
        self.config = config
        self.store = Store(store_path(state_dir))
        self.senders = Senders(config, self.store)
        self.announcer = Announcer(config, self.store, Composer(config), self.senders.channels)
        self.sensors = Sensors(config, config.rules)
        self.intake = Intake(config, self.sensors, lambda: self.wanted)
        self.web_state = WebState(config)
        self.web = WebServer(self.web_state, config.host, port, extra=self._routes)
        self.wanted: Wanted | None = None
        self._changed = asyncio.Event()
        self._web_dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self._signals = 0
        self._reloading: asyncio.Task[None] | None = None
        self._next_wake: float = MAX_SLEEP
        self._seen: tuple[int, int, int] | None = None

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the exit code."""
        for name, reason in self.config.inactive.items():
            log.warning("channel_inactive", channel=name, reason=reason)
        await self.senders.open()
        # Listen before saying anything: a port in use must stop us before a post goes out.
        await self._listen()
        self._remember_sensor_posts()
        self._reconcile()
        self._install_signals()
        # Ready only now: config, store and web server are up.
        notify("READY=1")
        log.info("daemon_started", channels=sorted(self.senders.channels), port=self.web.port)
        try:
            async with asyncio.TaskGroup() as group:
                self.senders.start(group)
                inputs = [group.create_task(coro) for coro in self._inputs()]
                pinger = group.create_task(watchdog(), name="watchdog")
                await self._stop.wait()
                notify("STOPPING=1")
                # Stop taking changes first, then let in-flight sends finish.
                for task in (*inputs, pinger):
                    task.cancel()
                await self.senders.drain()
        finally:
            await self.senders.close()
            await self.web.stop()
            self.store.close()
            log.info("daemon_stopped")
        return 0

    async def _listen(self) -> None:
        try:
            await self.web.start()
        except OSError as err:
            await self.senders.close()
            raise UserError(
                f"cannot listen on {self.config.host}:{self.web.port} ({err.strerror or err}); "
                "is another statusd running there? choose another port with --port or STATUSD_PORT"
            ) from err

    def _inputs(self) -> list[Coroutine[Any, Any, None]]:
        """The long-lived loops that bring changes in."""
        return [self._watch(), self._loop(), self._tick_sensors(), self._publish_web(),
                *feeds_tasks(self.config, self.config.feeds, self.ingest)]

    def _routes(self, app: web.Application) -> None:
        add_routes(app, self.config, self.config.feeds, self.ingest)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/readyz", self._ready)

    # -- signals -----------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        # Only a second Ctrl-C forces: systemd and `timeout` may send SIGTERM twice.
        forced = self._signals > 1 and sig is signal.SIGINT
        log.info("shutdown_requested", signal=sig.name, forced=forced)
        self._stop.set()
        if forced:
            self.senders.cancel()

    def _on_reload(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self.reload())
            self._reloading.add_done_callback(_log_crash)

    async def reload(self) -> None:
        """Re-read config and templates; keep SSE clients, unchanged channels and every delivery."""
        notify("RELOADING=1")
        try:
            config = config_module.load(self.config.path)
        except ConfigError as err:
            log.error("config_reload_failed", problems=[str(p) for p in err.problems], kept="running config")
            notify("READY=1")
            return
        replaced = await self.senders.replace(config)
        self.config = self.web_state.config = config
        self.announcer = Announcer(config, self.store, Composer(config), self.senders.channels)
        self._changed.set()
        notify("READY=1")
        log.info("config_reloaded", channels=sorted(self.senders.channels), replaced=replaced,
                 note="listen address, feeds and rules take effect at the next restart")

    # -- status file -------------------------------------------------------

    async def _watch(self) -> None:
        """React to every change of status.yaml, including replace-by-rename and delete."""
        path = self.config.status_file.resolve()
        # A low debounce: the default 1.6 s would make a flip feel slow.
        async for changes in awatch(path.parent, debounce=100, step=50, recursive=False):
            if any(Path(p).name == path.name for _, p in changes):
                self._changed.set()

    async def _loop(self) -> None:
        """Reconcile on every change, and when a planned time comes.

        The file watcher reports changes at once; a look at the file's stat
        every few seconds is the safety net for a change it could not see
        (one made while it was starting, or on a network file system).
        """
        loop = asyncio.get_running_loop()
        due = loop.time() + self._next_wake
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(max(due - loop.time(), 0.0), STAT_EVERY))
            except TimeoutError:
                if loop.time() < due and self._signature() == self._seen:
                    continue
            self._changed.clear()
            self._reconcile()
            due = loop.time() + self._next_wake

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            stat = self.config.status_file.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

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
        self._seen = self._signature()
        try:
            self.wanted = status_file.read(self.config.status_file, self.config)
        except ConfigError as err:
            metrics.STATUS_FILE_ERRORS.inc()
            log.error(
                "status_file_invalid", file=str(self.config.status_file),
                problems=[str(p) for p in err.problems], kept="last good status",
            )

    def _step(self) -> None:
        """Reconcile, record, wake the workers and refresh the public picture."""
        now = datetime.now(UTC)
        if self.wanted is not None:
            try:
                plan = self.announcer.step(self.wanted, now)
            except sqlite3.Error as err:
                # Disk full, or locked by another program: keep running, try again soon.
                log.error("store_unavailable", reason=str(err), store=str(self.store.path), retry_in=STORE_RETRY)
                self._next_wake = STORE_RETRY
            else:
                # Look again at least every few minutes, in case the clock jumped.
                wake = (plan.wake_at - now).total_seconds() + 0.05 if plan.wake_at else MAX_SLEEP
                self._next_wake = min(max(wake, 0.0), MAX_SLEEP)
                self.senders.poke()
        self._refresh_web(now)

    # -- sensors -----------------------------------------------------------

    def ingest(self, readings: list[Reading]) -> None:
        """Every feed hands its readings here (already checked, a whole batch at a time)."""
        self._announce(self.intake.accept(readings, datetime.now(UTC)))
        self._web_dirty.set()

    def _announce(self, events: Sequence[Any]) -> None:
        try:
            if events and self.announcer.announce(events):
                self.senders.poke()
        except sqlite3.Error as err:
            log.error("store_unavailable", reason=str(err), store=str(self.store.path), dropped=len(events))

    def _remember_sensor_posts(self) -> None:
        """After a restart, today's automatic posts count: nothing is said twice."""
        automatic = [e for e in recent_events(self.store, 500) if e.kind in AUTOMATIC]
        self.sensors.remember(automatic, datetime.now(UTC))

    async def _tick_sensors(self) -> None:
        """Notice silent sensors and posts held back by the minimum interval."""
        while True:
            await asyncio.sleep(SENSOR_TICK)
            now = datetime.now(UTC)
            self._announce(self.sensors.tick(now, self.intake.closed))
            metrics.SENSORS_STALE.set(len(self.sensors.stale(now)))
            self._web_dirty.set()

    # -- web ---------------------------------------------------------------

    def _refresh_web(self, now: datetime) -> None:
        try:
            announced, history = self.store.announced(), recent_events(self.store)
        except sqlite3.Error as err:
            log.error("store_unavailable", reason=str(err), store=str(self.store.path))
            return
        self.web_state.update(self.wanted or {}, announced, history, now, live=self.sensors.view(now))

    async def _publish_web(self) -> None:
        """Publish sensor-driven changes, coalesced: many readings, one update per half second."""
        while True:
            await self._web_dirty.wait()
            self._web_dirty.clear()
            self._refresh_web(datetime.now(UTC))
            await asyncio.sleep(WEB_COALESCE)

    async def _ready(self, request: web.Request) -> web.StreamResponse:
        """Ready when the status file has been read; with every channel's state for the operator."""
        pending, retrying, pauses = self.store.waiting(), self.store.retry_depth(), self.store.pauses()
        channels: dict[str, Any] = {
            name: _channel_state(name, pending.get(name, 0), retrying.get(name, 0), pauses.get(name))
            for name in self.senders.channels
        }
        channels.update({name: {"state": "off", "reason": reason} for name, reason in self.config.inactive.items()})
        read = self.wanted is not None
        # A store that cannot record (disk full, locked) announces nothing: not ready, and why.
        trouble = self.store.trouble
        ready = read and trouble is None
        body = {"ready": ready, "status_file": "ok" if read else "not read yet", "store": trouble or "ok",
                "channels": channels}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        for name, count in self.store.retry_depth().items():
            metrics.RETRY_QUEUE.labels(name).set(count)
        metrics.SSE_SUBSCRIBERS.set(len(self.web_state.hub.subscribers))
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


def _channel_state(name: str, pending: int, retrying: int, pause: tuple[float, str] | None) -> dict[str, Any]:
    if pause is not None:
        return {"state": "paused", "until": datetime.fromtimestamp(pause[0], UTC).isoformat(),
                "reason": pause[1], "pending": pending}
    return {"state": "retrying" if retrying else "ok", "pending": pending}


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_crashed", task=task.get_name(), error=repr(task.exception()))
