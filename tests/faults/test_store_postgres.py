"""The daemon on PostgreSQL while the database misbehaves: a table locked by another program, and
every connection cut. The web keeps answering at once; /readyz tells the store's trouble; once the
fault clears, what was changed meanwhile is announced, once."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.postgres import PASSWORD, PostgresServer
from tests.support.stores import STORE_ENV, with_store
from tests.support.waiting import until

pytestmark = pytest.mark.faults

SECRET = "hook-secret-pg-77"


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


@pytest.fixture
def store_lines(postgres_server: PostgresServer, postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from statusd.outbox.postgres import PostgresStore

    store = PostgresStore(postgres_server.dsn(postgres_database, password=False), PASSWORD)
    store.migrate()
    store.close()
    monkeypatch.setenv(STORE_ENV, PASSWORD)
    return (f"store: {postgres_server.dsn(postgres_database, password=False)}\n"
            f"store_password: {{env: {STORE_ENV}}}\nstore_timeout: 2s\n")


def start(write_config: WriteConfig, hook: WebhookReceiver, lines: str, state: str) -> Daemon:
    channel = f"  hook: {{type: webhook, language: en, url: '{hook.url}', secret: {{env: HOOK_SECRET}}, timeout: 2s}}"
    config = with_store(write_config(channel), lines)
    return Daemon(config, config.parent / state, env={"HOOK_SECRET": SECRET}).start()


def timed_get(url: str) -> tuple[float, int, bytes]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return time.monotonic() - started, answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return time.monotonic() - started, err.code, err.read()


class TestLockedTable:
    """A table locked by another program for longer than the store's timeouts: the web never waits."""

    async def test_web_answers_at_once_and_the_change_goes_out_after(
            self, write_config: WriteConfig, hook: WebhookReceiver, store_lines: str,
            postgres_server: PostgresServer, postgres_database: str) -> None:
        daemon = start(write_config, hook, store_lines, "state")
        try:
            locker = psycopg.connect(postgres_server.dsn(postgres_database))
            locker.execute("BEGIN")
            locker.execute("LOCK TABLE deliveries, events, announced IN ACCESS EXCLUSIVE MODE")
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "en:Water in the basement.",
                                    check=False)
            slowest = 0.0
            for _ in range(30):  # 3 s of the lock, longer than the 2 s store timeouts
                for path in ("/healthz", "/status.json"):
                    seconds, status, _ = await asyncio.to_thread(timed_get, daemon.url + path)
                    assert status == 200
                    slowest = max(slowest, seconds)
                await asyncio.sleep(0.1)
            _, status, body = await asyncio.to_thread(timed_get, daemon.ops_url + "/readyz")
            ready = json.loads(body)
            locker.rollback()
            locker.close()
            assert slowest < 0.5
            assert status == 503 and ready["store"] != "ok" and PASSWORD not in body.decode()
            await hook.wait_for(1, timeout=20)
            assert "Water in the basement." in str(hook.received[-1].get("text"))
            await until(lambda: timed_get(daemon.ops_url + "/readyz")[1] == 200, "/readyz ready again",
                        timeout=15, blocking=True)
        finally:
            daemon.kill()


class TestCutConnections:
    """Every connection of the daemon killed, again and again, while staff change the status."""

    async def test_each_change_is_announced_once(
            self, write_config: WriteConfig, hook: WebhookReceiver, store_lines: str,
            postgres_server: PostgresServer, postgres_database: str) -> None:
        daemon = start(write_config, hook, store_lines, "state")
        try:
            levels = ["closed", "open", "limited", "closed", "open"]
            for n, level in enumerate(levels):
                await asyncio.to_thread(daemon.cli, "set", "main", level, "-m", f"en:Update {n}.", check=False)
                for _ in range(3):
                    await asyncio.to_thread(postgres_server.terminate, postgres_database)
                    await asyncio.sleep(0.2)
            await until(lambda: any("Update 4." in str(m.get("text")) for m in hook.received),
                        "the last update delivered", timeout=30)
            await asyncio.sleep(1.0)
            texts = [str(m.get("text")) for m in hook.received]
            assert len(texts) == len(set(texts))  # nothing twice
            assert "Update 4." in texts[-1]  # the latest last
            _, status, _ = await asyncio.to_thread(timed_get, daemon.url + "/healthz")
            assert status == 200
        finally:
            daemon.kill()
