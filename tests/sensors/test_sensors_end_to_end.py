"""Sensor feeds into the running daemon: status.json, automatic posts, building-system closures."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.mosquitto import Mosquitto, mosquitto  # noqa: F401  (the fixture)
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-sensors"
TOKEN = "counter-token-5d1e"
PANEL = "fire-panel-token-77aa"


def sections(hook: WebhookReceiver, broker: Mosquitto) -> tuple[str, str]:
    """The channels entry and the feeds and rules sections of the test config."""
    channels = (f"  hook: {{type: webhook, language: en, url: '{hook.url}', secret: {{env: HOOK_SECRET}},"
                " timeout: 2s}")
    feeds = (
        "feeds:\n"
        "  counters: {type: http, token: {env: COUNTER_TOKEN}}\n"
        "  panel: {type: http, token: {env: PANEL_TOKEN}, allow: [status]}\n"
        f"  broker: {{type: mqtt, host: 127.0.0.1, port: {broker.port}, topics: ['library/+/queue']}}\n"
        "rules:\n"
        "  smoothing: {method: none}\n"
        "  min_interval: 0s\n"
    )
    return channels, feeds


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


def start(write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, broker: Mosquitto) -> Daemon:
    channels, feeds = sections(hook, broker)
    path = write_config(channels)
    path.write_text(path.read_text() + feeds)
    env = {"HOOK_SECRET": SECRET, "COUNTER_TOKEN": TOKEN, "PANEL_TOKEN": PANEL}
    return Daemon(path, tmp_path / "state", env=env).start()


def post(daemon: Daemon, body: Any, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{daemon.url}/api/v1/readings", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def site(daemon: Daemon, name: str = "main") -> dict[str, Any]:
    with urllib.request.urlopen(f"{daemon.url}/status.json", timeout=5) as answer:
        return json.load(answer)["sites"][name]  # type: ignore[no-any-return]


def seats(occupied: int) -> dict[str, Any]:
    return {"kind": "seats", "site": "main", "zone": "floor2", "occupied": occupied, "capacity": 240}


class TestHttpFeed:
    """Readings pushed over HTTP reach status.json and, when a band changes, the channels."""

    async def test_seats_reach_the_page_and_a_full_floor_is_posted(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, mosquitto: Mosquitto  # noqa: F811
    ) -> None:
        daemon = start(write_config, tmp_path, hook, mosquitto)
        try:
            assert post(daemon, seats(60)) == (202, {"accepted": 1})
            await until(lambda: (site(daemon)["zones"].get("floor2") or {}).get("occupied") == 60,
                        "seats shown", timeout=8, blocking=True)
            assert post(daemon, {"readings": [seats(200), seats(236)]})[0] == 202
            await hook.wait_for(1)
            assert hook.received[0]["kind"] == "seats_changed"
            await until(lambda: site(daemon)["busy"] is True, "busy notice", timeout=8, blocking=True)
        finally:
            daemon.kill()

    async def test_bad_input_is_refused_and_changes_nothing(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, mosquitto: Mosquitto  # noqa: F811
    ) -> None:
        daemon = start(write_config, tmp_path, hook, mosquitto)
        try:
            assert post(daemon, seats(10), token="wrong")[0] == 401
            status, answer = post(daemon, {"readings": [seats(10), {**seats(5), "zone": "floor9"}]})
            assert (status, answer["field"]) == (422, "readings[1].zone")
            await asyncio.sleep(0.8)
            assert (site(daemon)["zones"].get("floor2") or {}).get("occupied") is None
        finally:
            daemon.kill()

    async def test_a_fire_panel_closes_the_site_and_staff_reopen_it(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, mosquitto: Mosquitto  # noqa: F811
    ) -> None:
        daemon = start(write_config, tmp_path, hook, mosquitto)
        try:
            alarm = {"kind": "status", "site": "main", "level": "emergency", "reason": "Fire alarm: evacuate."}
            assert post(daemon, alarm, token=TOKEN)[0] == 403  # the counters may not close the library
            assert post(daemon, alarm, token=PANEL)[0] == 202
            await hook.wait_for(1)
            assert (hook.received[0]["kind"], hook.received[0]["level"]) == ("status_changed", "emergency")
            # Announced first, written to the file just after, off the event loop.
            await until(lambda: "by: feed:panel" in (tmp_path / "status.yaml").read_text(), "written to status.yaml")
            assert site(daemon)["zones"] == {}  # no seat figures while closed
            await asyncio.to_thread(daemon.cli, "set", "main", "open")
            await hook.wait_for(2)
            assert hook.received[1]["level"] == "open"
        finally:
            daemon.kill()


class TestMqttFeed:
    """Queue readings published to a real Mosquitto reach the daemon."""

    async def test_queue_wait_over_mqtt(
        self, write_config: WriteConfig, tmp_path: Path, hook: WebhookReceiver, mosquitto: Mosquitto  # noqa: F811
    ) -> None:
        daemon = start(write_config, tmp_path, hook, mosquitto)
        try:
            # The daemon logs feed_connected once it has subscribed: publishing before would be lost.
            await until(lambda: '"event": "feed_connected"' in daemon.logs(), "the daemon subscribed", timeout=10)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
                await client.publish("library/main/queue", b"not json")  # logged and skipped
                reading = {"kind": "queue", "site": "main", "queue": "entrance", "length": 80, "wait_minutes": 47}
                await client.publish("library/main/queue", json.dumps(reading).encode(), qos=1)
            await until(lambda: (site(daemon)["queues"].get("entrance") or {}).get("wait_minutes") is not None,
                        "queue shown", timeout=8, blocking=True)
            await hook.wait_for(1)
            assert hook.received[0]["kind"] == "queue_changed"
            assert "reading_rejected" in daemon.logs()
        finally:
            daemon.kill()
