"""Builds the pipeline in order, runs it, and shuts it down in order on a signal."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from statusd import collector, loading, metrics, tasks
from statusd.announcer import Announcer
from statusd.cluster.solo import node_for
from statusd.compose.composer import Composer
from statusd.config.load import Config
from statusd.desk import schema as desk_schema
from statusd.desk.handoff import listener as status_socket
from statusd.desk.routes import add_routes as add_desk_routes
from statusd.errors import ConfigError, UserError
from statusd.intake import Intake
from statusd.model import Wanted
from statusd.notify import notify, watchdog
from statusd.outbox import checkpoints, health, recall
from statusd.outbox.facade import AsyncStore
from statusd.outbox.health import Health
from statusd.outbox.opening import open_store
from statusd.outbox.records import STORE_ERRORS
from statusd.outbox.senders import Senders
from statusd.paths import store_path
from statusd.sensors.state import Sensors
from statusd.sources.feeds.http import add_routes
from statusd.sources.feeds.start import feeds_tasks
from statusd.sources.readings import Reading
from statusd.sources.status.watch import StatusWatch
from statusd.web.follow import Follow
from statusd.web.ops import Ops, OpsView
from statusd.web.publish import Publisher
from statusd.web.server import WebServer, WebState

__all__ = ["App"]

log = structlog.get_logger()

MAX_SLEEP = 300.0
STORE_RETRY = 2.0
SENSOR_TICK = 30.0


class App:
    """The daemon: status file and feeds → rules → announcer → outbox workers → channels, and the web."""

    def __init__(self, config: Config, state_dir: Path, port: int, ops_port: int | None = None) -> None:
        self.config = config
        self.state_dir = state_dir
        # The node's own files (health, sockets, push subscriptions) live here, with PostgreSQL too.
        state_dir.mkdir(parents=True, exist_ok=True)
        self.node = node_for(config, self.ingest)  # alone (SQLite), or one node of a cluster on PostgreSQL
        self.store = AsyncStore(open_store(config, state_dir, patient=True, holder=self.node.holder,
                                           autocheckpoint=checkpoints.BACKSTOP))  # see checkpoints.py
        self.senders = Senders(config, self.store, state_dir, self.node.lease)
        self.health = Health(state_dir, config.delivery.recheck, config.delivery.timeout)
        self._turn = asyncio.Lock()
        self.announcer = Announcer(config, self.store, Composer(config), self.senders.channels, self._turn)
        self.sensors = Sensors(config, config.rules)
        self.status = (self.node.watch(self._step, self._last_announced,
                                       lambda: self.publisher.refresh(datetime.now(UTC)))
                       or StatusWatch(config, self._step, self._last_announced, lambda: self._pushed))
        # `statusd set` asks us to make its change, or tells us at once that status.yaml was written
        self.nudges = status_socket(state_dir, self.status, lambda: self.config)  # (a cluster's rows: NOTIFY)
        self.intake = Intake(config, self.sensors, lambda: self.wanted, self.status.submit)
        self.web_state = WebState(config)
        self.publisher = Publisher(self.web_state, self.store, lambda: self.wanted, self.sensors.view)
        self.web = WebServer(self.web_state, config.host, port, extra=self._routes)
        self.ops = Ops(OpsView(self.store, self.web_state, self._health, lambda: self.config.inactive,
                               lambda: self.wanted is not None,
                               lambda report: health.update_metrics(report, self.health.checks), self.node.describe),
                       config.ops_host, config.ops_port if ops_port is None else ops_port)
        metrics.know_feeds(config.feeds.feeds)
        self._stop = asyncio.Event()
        self._signals = 0
        self._reloading: asyncio.Task[None] | None = None
        # The status path's callbacks are plain calls; the steps they ask for await the store
        # in the `steps` loop, in order (sensor events queued until then, never dropped).
        self._kick = asyncio.Event()
        self._events: list[Any] = []
        self._fallback: Wanted = {}
        self._pushed: recall.Pushed = {}
        self._next_wake = MAX_SLEEP

    @property
    def wanted(self) -> Wanted | None:
        """The status in force (None until status.yaml, or the store's last good state, is read)."""
        return self.status.wanted

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the exit code."""
        for name, reason in self.config.inactive.items():
            log.warning("channel_inactive", channel=name, reason=reason)
        self._install_signals()
        await self.node.start(self._kick.set, self.store)
        self._fallback, self._pushed = await recall.recollect(self.store)
        # The first read (whole, so it takes a moment) before the first request: status.json is right at once.
        await self.status.load()
        await self.publisher.refresh(datetime.now(UTC))
        # Listen before logging in or saying anything: a port in use must stop us before a
        # post goes out, and before a login that a crash loop would repeat.
        await self._listen()
        if self.nudges is not None and not await self.nudges.start():
            log.warning("status_socket_unavailable", path=str(self.nudges.path),
                        note="commands are seen by the file watch alone")
        await self.senders.open()
        # After a restart, today's automatic posts count: nothing is said twice.
        self.sensors.remember(await recall.automatic_posts(self.store), datetime.now(UTC))
        await self.status.reconcile()
        self._next_wake = await self._step_now()  # said before READY, as a start must
        collector.settle()  # start-up is done: what it made lives as long as the daemon (collector.py)
        notify("READY=1")  # ready only now: config, store and web server are up
        log.info("daemon_started", channels=sorted(self.senders.channels), port=self.web.port,
                 ops_port=self.ops.port)
        try:
            async with asyncio.TaskGroup() as group:
                self.senders.start(group)
                loops = [group.create_task(coro, name=name) for name, coro in self._loops()]
                await self._stop.wait()
                notify("STOPPING=1")
                for task in loops:  # stop taking changes first, then let in-flight sends finish
                    task.cancel()
                await self.senders.drain()
        finally:
            await self.node.stop()  # the lease let go at once: another node takes over now
            await self.senders.close()
            if self.nudges is not None:
                await self.nudges.stop()
            await self.ops.stop()
            await self.web.stop()
            await self.store.close()
            log.info("daemon_stopped")
        return 0

    async def _listen(self) -> None:
        for what, host, listener in (("web", self.config.host, self.web), ("ops", self.config.ops_host, self.ops)):
            try:
                await listener.start()
            except OSError as err:
                await self.web.stop()
                await self.senders.close()
                flag = "--port or STATUSD_PORT" if what == "web" else "--ops-port or ops: {listen: …}"
                raise UserError(
                    f"cannot listen on {host}:{listener.port} ({err.strerror or err}); "
                    f"is another statusd running there? choose another port with {flag}"
                ) from err

    def _loops(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """Every long-lived loop: the inputs that bring changes in, the web side's, the watchdog."""
        feeds = feeds_tasks(self.config, self.config.feeds, self.ingest)
        return [*((f"status-{i}", coro) for i, coro in enumerate(self.status.tasks())),
                ("steps", self._steps()), ("sensor-tick", self._tick_sensors()),
                ("web-publish", self.publisher.run()),
                ("health", self.health.watch(lambda: self.senders.channels)),
                *((f"feed-{i}", coro) for i, coro in enumerate(feeds)),
                *self.web.loops(), ("watchdog", watchdog()), *self.node.loops()]

    def _routes(self, app: web.Application) -> None:
        add_routes(app, self.config, self.config.feeds, self.ingest, describe_more=desk_schema.extend)
        add_desk_routes(app, lambda: self.config, store_path(self.state_dir))
        Follow(lambda: self.config, self.state_dir).add_routes(app)

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
            self._reloading = tasks.spawn(self.reload(), "reload")

    async def reload(self) -> None:
        """Re-read config and templates; keep SSE clients, unchanged channels and every delivery."""
        notify("RELOADING=1")
        try:
            config = loading.load(self.config.path)
        except ConfigError as err:
            log.error("config_reload_failed", problems=[str(p) for p in err.problems], kept="running config")
            notify("READY=1")
            return
        async with self._turn:  # never while a step composes from the channels it changes
            replaced = await self.senders.replace(config)
            self.config = self.web_state.config = self.status.config = config
            self.announcer = Announcer(config, self.store, Composer(config), self.senders.channels, self._turn)
        self.status.changed()
        notify("READY=1")
        log.info("config_reloaded", channels=sorted(self.senders.channels), replaced=replaced,
                 note="listen address, feeds and rules take effect at the next restart")

    # -- status --------------------------------------------------------------

    def _last_announced(self) -> Wanted:
        """The last good status (read from the store at start, before the status file)."""
        return self._fallback

    def _step(self, wanted: Wanted | None) -> float:
        """The status watch's callback: a step is due (it runs in `_steps`, which awaits the store)."""
        self._kick.set()
        return self._next_wake

    async def _steps(self) -> None:
        """The one loop that records: queued sensor events, then the wanted status; and planned times."""
        while True:
            try:
                async with asyncio.timeout(self._next_wake):
                    await self._kick.wait()
            except TimeoutError:
                pass  # a planned time (a closure's start, an expiry) has come
            self._kick.clear()
            events, self._events = self._events, []
            if events:
                await self._announce_now(events)
            self._next_wake = await self._step_now()

    async def _step_now(self) -> float:
        """Reconcile, record, wake the workers and refresh the public picture; seconds to the next look."""
        now, next_wake, hand = datetime.now(UTC), MAX_SLEEP, None
        wanted = self.wanted
        if wanted is not None:
            reservation = self.senders.reserve() if (leading := self.node.leading()) else None  # see handout.py
            try:
                plan = await self.announcer.step(wanted, now, record=leading, reservation=reservation)
            except BaseException as err:
                self.senders.release(reservation)  # cancelled too (shutdown): the reserved workers must not wait
                if not isinstance(err, STORE_ERRORS):
                    raise
                # Disk full, locked by another program, the database cut: keep running, try again soon.
                log.error("store_unavailable", reason=str(err), store=self.store.label, retry_in=STORE_RETRY)
                next_wake = STORE_RETRY
            else:
                # Look again at least every few minutes, in case the clock jumped.
                wake = (plan.wake_at - now).total_seconds() + 0.05 if plan.wake_at else MAX_SLEEP
                next_wake = min(max(wake, 0.0), MAX_SLEEP)
                hand = self.senders.poke(reservation)
        # The posts first: the pages, status.json and SSE follow (publish.py), status.yaml once they are out.
        self.publisher.soon(after=hand)
        if isinstance(self.status, StatusWatch):
            watch = self.status
            if hand is None:
                watch.flush()
            else:
                hand.add_done_callback(lambda _: watch.flush())
        return next_wake

    # -- sensors -----------------------------------------------------------

    def ingest(self, readings: list[Reading]) -> None:
        """Every feed hands its readings here (already checked, a whole batch at a time)."""
        self.node.note(readings)  # with sensors.shared, for the other nodes too
        self._announce(self.intake.accept(readings, datetime.now(UTC)))
        if not self._kick.is_set():  # else a step is coming, which publishes after its posts leave
            self.publisher.dirty()

    def _announce(self, events: Sequence[Any]) -> None:
        """Queue sensor events for the `steps` loop, which records them in order."""
        if events and self.node.leading():  # in a cluster, the leader alone decides automatic posts
            self._events.extend(events)
            self._kick.set()

    async def _announce_now(self, events: Sequence[Any]) -> None:
        try:
            if await self.announcer.announce(events):
                self.senders.poke()
        except STORE_ERRORS as err:
            log.error("store_unavailable", reason=str(err), store=self.store.label, dropped=len(events))

    async def _tick_sensors(self) -> None:
        """Notice silent sensors and posts held back by the minimum interval."""
        while True:
            await asyncio.sleep(SENSOR_TICK)
            now = datetime.now(UTC)
            self._announce(self.sensors.tick(now, self.intake.closed))
            metrics.SENSORS_STALE.set(len(self.sensors.stale(now)))
            self.publisher.dirty()

    async def _health(self) -> dict[str, dict[str, Any]]:
        """Each channel's health for /readyz, /metrics and the operator: failures, pauses, budgets."""
        budgets = {n: w.budget for n, w in self.senders.workers.items() if w.budget is not None}
        return await self.store.run(health.report, list(self.senders.channels), budgets, self.health.checks)
