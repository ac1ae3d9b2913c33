"""A fire panel's status announced before a stop, and not yet in status.yaml, is kept, never undone.

The daemon announces a pushed status first and writes it to status.yaml just after. A
crash between the two leaves the file as it was: the store has the closure, the file the
old status. These tests make that state exactly (the push, then the file put back as it
was, with its old time) and start the daemon on it, reading what the receiver holds.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from statusd.config.load import Config
from statusd.model import Level, StatusEntry, Target
from statusd.sources.status.lock import lock_path
from statusd.sources.status.unwritten import adopt
from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.waiting import until

SECRET = "hook-secret-unwritten"
PANEL = "fire-panel-token-unwritten"
BEFORE = "main:\n  level: open\n"


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


def config_for(write_config: WriteConfig, hook: WebhookReceiver) -> Path:
    path = write_config(f"  hook: {{type: webhook, language: en, url: '{hook.url}', secret: {{env: HOOK_SECRET}},"
                        " timeout: 2s}", status=BEFORE)
    path.write_text(path.read_text() + "feeds:\n  panel: {type: http, token: {env: PANEL_TOKEN}, allow: [status]}\n")
    return path


def push(daemon: Daemon, body: dict[str, Any]) -> int:
    request = urllib.request.Request(f"{daemon.url}/api/v1/readings", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {PANEL}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(answer.status)


def level(daemon: Daemon) -> str:
    with urllib.request.urlopen(f"{daemon.url}/status.json", timeout=5) as answer:
        return str(json.load(answer)["sites"]["main"]["level"])


ALARM = {"kind": "status", "site": "main", "level": "emergency", "reason": "Fire alarm: evacuate."}


async def pushed_then_file_put_back(config: Path, state: Path, hook: WebhookReceiver, status: Path,
                                    changed_after: bool) -> None:
    """The panel's alarm announced and written; then status.yaml as it was, with its old time
    (a crash before the write) or a time after the push (a person's edit)."""
    env = {"HOOK_SECRET": SECRET, "PANEL_TOKEN": PANEL}
    before = time.time() - 1
    daemon = await asyncio.to_thread(Daemon(config, state, env=env).start)
    try:
        assert await asyncio.to_thread(push, daemon, ALARM) == 202
        await hook.wait_for(1)
        await until(lambda: "by: feed:panel" in status.read_text(), "the alarm written to status.yaml")
    finally:
        assert daemon.terminate() == 0
    moment = time.time() + 1 if changed_after else before
    await asyncio.to_thread(put_back, status, moment)


def put_back(status: Path, moment: float) -> None:
    status.write_text(BEFORE, encoding="utf-8")
    os.utime(status, (moment, moment))


pytestmark = pytest.mark.e2e


class TestAStopBeforeTheWrite:
    async def test_the_pushed_status_stays_and_is_written(
            self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver) -> None:
        # A real stop before the write: the file's lock held, so the daemon's write of the
        # alarm waits, and the daemon is killed meanwhile. The file is as it was, times and all.
        config, status = config_for(write_config, hook), tmp_path / "status.yaml"
        env = {"HOOK_SECRET": SECRET, "PANEL_TOKEN": PANEL}
        first = await asyncio.to_thread(Daemon(config, tmp_path / "state", env=env).start)
        lock = os.open(lock_path(status), os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert await asyncio.to_thread(push, first, ALARM) == 202
            await hook.wait_for(1)
            await until(lambda: "status_push_waiting" in first.logs(), "the write held back by the lock")
            first.kill()
        finally:
            os.close(lock)
        assert status.read_text() == BEFORE
        daemon = await asyncio.to_thread(Daemon(config, tmp_path / "state", env=env).start)
        try:
            await until(lambda: "by: feed:panel" in status.read_text(), "the alarm written at the start")
            assert "status_push_restored" in daemon.logs()
            assert await asyncio.to_thread(level, daemon) == "emergency"
            await asyncio.sleep(0.5)
            assert [m["level"] for m in hook.received] == ["emergency"]  # nothing undone, nothing twice
            await asyncio.to_thread(daemon.cli, "set", "main", "open")  # staff keep the last word
            await hook.wait_for(2)
            assert hook.received[1]["level"] == "open"
        finally:
            daemon.kill()

    async def test_a_file_changed_after_the_push_has_the_last_word(
            self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver) -> None:
        config, status = config_for(write_config, hook), tmp_path / "status.yaml"
        await pushed_then_file_put_back(config, tmp_path / "state", hook, status, changed_after=True)
        daemon = await asyncio.to_thread(
            Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET, "PANEL_TOKEN": PANEL}).start)
        try:
            await hook.wait_for(2)
            assert hook.received[1]["level"] == "open"  # a person reopened it by hand
            assert "status_push_restored" not in daemon.logs()
            assert status.read_text() == BEFORE
        finally:
            daemon.kill()


SEEN = (1, 2, 100 * 10**9)


class TestAdopt:
    ENTRY = StatusEntry(Level.EMERGENCY, {"en": "Fire alarm"}, by="feed:panel", at=datetime(2026, 12, 2, tzinfo=UTC))

    def test_recorded_after_the_file_changed_and_not_in_it(self, config: Config) -> None:
        pending: dict[Target, Any] = {}
        assert adopt(pending, {Target("main"): (self.ENTRY, 200.0)}, {Target("main"): StatusEntry()}, SEEN, config)
        assert pending == {Target("main"): (self.ENTRY, False, StatusEntry())}

    @pytest.mark.parametrize("recorded, held", [(50.0, StatusEntry()), (200.0, ENTRY),
                                                (200.0, StatusEntry(Level.EMERGENCY, {"en": "Fire alarm"}))])
    def test_not_when_the_file_is_newer_or_holds_it(self, recorded: float, held: StatusEntry, config: Config) -> None:
        pending: dict[Target, Any] = {}
        assert not adopt(pending, {Target("main"): (self.ENTRY, recorded)}, {Target("main"): held}, SEEN, config)
        assert pending == {}

    def test_not_over_a_push_already_pending_nor_without_a_file(self, config: Config) -> None:
        pending: dict[Target, Any] = {Target("main"): ("newer", False, None)}
        assert not adopt(pending, {Target("main"): (self.ENTRY, 200.0)}, {}, SEEN, config)
        assert not adopt({}, {Target("main"): (self.ENTRY, 200.0)}, {}, None, config)
