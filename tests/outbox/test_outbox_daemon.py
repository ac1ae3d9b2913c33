"""The real daemon and a real webhook receiver: the latest status lands last, and a retract
acts at once, read back from what the receiver holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.stores import with_store
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-91d0"
HOLD = 6.0


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


def start(write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, store: str,
          timeout: str = "10s") -> Daemon:
    """The daemon with a webhook channel, on the test's store (SQLite, then PostgreSQL)."""
    channel = (f"  hook: {{type: webhook, language: en, url: '{hook.url}', secret: {{env: HOOK_SECRET}},"
               f" timeout: {timeout}}}")
    return Daemon(with_store(write_config(channel), store), tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()


def texts(hook: WebhookReceiver) -> list[str]:
    return [str(body.get("text")) for body in hook.received]


async def set_status(daemon: Daemon, target: str, level: str, message: str | None = None) -> None:
    args = ["set", target, level] + (["-m", f"en:{message}"] if message else [])
    await asyncio.to_thread(daemon.cli, *args)


class TestLatestStatusLast:
    """A post held by the receiver and then refused never lands after the newer status."""

    @pytest.mark.parametrize(("target", "before", "held", "newer"), [
        ("main", ("closed", "Fire in the hall."), ("open", None), ("closed", "Flooded basement.")),
        ("main/wifi", ("limited", "Slow Wi-Fi."), ("open", None), ("limited", "No Wi-Fi upstairs.")),
    ])
    async def test_held_then_500_while_a_newer_status_arrives(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, store_config: str, target: str,
        before: tuple[str, str], held: tuple[str, None], newer: tuple[str, str],
    ) -> None:
        daemon = start(write_config, tmp_path, hook, store_config)
        try:
            await set_status(daemon, target, *before)
            await hook.wait_for(1, timeout=10)
            hook.delay = HOLD
            hook.script("error500")
            await set_status(daemon, target, *held)
            await hook.wait_attempts(2, timeout=10)  # the receiver holds the reopening now
            hook.delay = 0.0
            await set_status(daemon, target, *newer)
            await asyncio.sleep(HOLD + 2.0)
        finally:
            daemon.kill()
        received = texts(hook)
        assert len(received) == 2, received
        assert before[1] in received[0] and newer[1] in received[-1], received


class TestRetractActsAtOnce:
    """`statusd retract` of an update no longer in force deletes its post within a second."""

    async def test_retract_an_older_update(self, write_config: WriteConfig, tmp_path: Path,
                                           hook: WebhookReceiver, store_config: str) -> None:
        daemon = start(write_config, tmp_path, hook, store_config, timeout="2s")
        try:
            await set_status(daemon, "main", "closed", "Fire in the hall.")
            await hook.wait_for(1, timeout=10)
            await set_status(daemon, "main", "closed", "Flooded basement.")
            await hook.wait_for(2, timeout=10)
            first = hook.received[0]
            await asyncio.sleep(0.5)  # every worker is idle, waiting on its long timer
            await asyncio.to_thread(daemon.cli, "retract", str(first["event_id"]))
            returned = time.monotonic()
            await until(lambda: len(hook.deleted) == 1, "the deletion of the retracted post", timeout=5)
            took = time.monotonic() - returned
        finally:
            daemon.kill()
        assert hook.deleted[0]["retract"] == hook.arrivals[0].remote_id
        assert took < 1.0, f"the deletion arrived {took:.2f} s after `statusd retract` returned"
