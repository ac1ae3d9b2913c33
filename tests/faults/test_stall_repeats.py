"""Platforms that stall and then answer, SIGKILLs mid-send, and updates that say again exactly
what an earlier one said: every update is on every channel once, and each channel shows the
latest status of every target last.

Bluesky keeps no idempotency key (the worker must look its posts up); the webhooks and
Mastodon honour theirs. A "late" fault lets the platform take the post at once and answers
only after the channel gave up, so the send's outcome is unknown to statusd.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from statusd import loading as config_module
from statusd.sources.status import file as status_file
from tests.faults.audit import judge
from tests.faults.driver import TRACEBACK, Desk, excerpt, kill_mid_send, settle
from tests.faults.fleet import ENV, Fleet, Hook
from tests.faults.summary import Ledger
from tests.support.daemon import Daemon

pytestmark = pytest.mark.faults

TRIALS = 12
HOOKS = {"hook-fr": Hook("fr"), "hook-en": Hook("en")}
CHANNELS = (*HOOKS, "mastodon", "bluesky")
STALLS = {"late": 0.25, "timeout": 0.05, "5xx": 0.05}
REPEATS = 0.35
TIMEOUT = 1.0
SETTLE = 45.0


async def _kill_anytime(daemon: Daemon, desk: Desk, fleet: Fleet, rng: random.Random) -> str:
    await asyncio.sleep(rng.uniform(0.0, 1.5))
    return "random moment"


class TestStallsAndRepeats:
    """Stalling platforms, kills and repeated texts: no duplicate, no loss, the latest last."""

    async def test_every_update_once_and_the_latest_last(
        self, rng: random.Random, fleet_factory: Callable[..., Awaitable[Fleet]],
        fault_config: Callable[..., Path], tmp_path: Path, ledger: Ledger, compressed: None,
    ) -> None:
        fleet = await fleet_factory(rng, HOOKS, delay=(0.0, 0.1), channel_timeout=TIMEOUT,
                                    faults={name: STALLS for name in CHANNELS})
        path = fault_config(fleet.channels(timeout=f"{TIMEOUT:g}s", only=CHANNELS))
        config = config_module.load(path)
        daemon = Daemon(path, tmp_path / "state", env=ENV)
        desk = Desk(config, rng, repeats=REPEATS)
        kills: Counter[str] = Counter()
        await asyncio.to_thread(daemon.start)
        try:
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(desk.keep_flipping((0.2, 0.7), stop))
                try:
                    for trial in range(TRIALS):
                        point = kill_mid_send if trial % 2 else _kill_anytime
                        kills[await point(daemon, desk, fleet, rng)] += 1
                        await asyncio.to_thread(daemon.kill)
                        await asyncio.to_thread(daemon.start)
                finally:
                    stop.set()
            # Longer than a "late" answer takes, so that a late second post would be seen.
            outbox = await settle(daemon, config, list(CHANNELS), SETTLE, linger=2.5)
            alive = daemon.proc is not None and daemon.proc.poll() is None
        finally:
            await asyncio.to_thread(daemon.kill)
        verdict = judge(outbox, fleet, status_file.read(config.status_file, config), CHANNELS)
        ledger.add(verdict.row("stalls, kills, repeated texts", TRIALS, fleet.faults_injected + sum(kills.values())))
        print(f"kills {dict(kills)}; flips {desk.flips} ({desk.flips - len(desk.said)} repeats);"
              f" events {len(outbox.events)}; faults injected {fleet.faults_injected}")
        assert alive, f"the daemon died after the last restart:\n{daemon.logs()[-3000:]}"
        assert TRACEBACK not in daemon.logs(), excerpt(daemon.logs(), TRACEBACK)
        verdict.check()
        # Not a vacuous run: repeats were flipped, stalls injected, kills landed mid-send.
        assert desk.flips - len(desk.said) >= 5 and fleet.faults_injected >= 20, (desk.flips, fleet.faults_injected)
        assert len(outbox.events) >= 15, len(outbox.events)

