"""Web Push through the real daemon: 10,000 subscriptions, one closure, a SIGKILL mid-batch, a 429 after.

The push service is our own (tests/support/fakes/push.py): it checks every VAPID
header and decrypts every message with the browser's key, so what it holds is what
phones would show. Afterwards every live subscription of the site holds the closure
exactly once (after Topic replacement), in its language and for its kinds; a message
went twice only to a subscription push.sqlite had marked in doubt at the kill, and
never more than the in-flight window; the gone ones are deleted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from statusd.channels.webpush_send import CHUNK, FLUSH
from statusd.channels.webpush_store import CLAIMED, store_file
from tests.conftest import WriteConfig
from tests.push.conftest import add, push_channels
from tests.support.daemon import Daemon
from tests.support.fakes.push import PushService
from tests.support.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

CONNECTIONS = 50
FR, EN, ALL, GONE, ANNEXE = 9_000, 400, 300, 200, 100  # 10,000 in all


def in_doubt(state: Path) -> set[str]:
    """Endpoints push.sqlite holds CLAIMED: sent, perhaps, but not recorded."""
    db = sqlite3.connect(store_file(state))
    try:
        rows = db.execute("SELECT s.endpoint FROM pushes p JOIN subscriptions s ON s.id = p.sub "
                          "WHERE p.state = ?", (CLAIMED,)).fetchall()
    finally:
        db.close()
    return {row[0] for row in rows}


def closures(service: PushService) -> Counter[str]:
    return Counter(r.browser for r in service.received if r.payload.get("level") == "closed")


class TestTenThousand:
    """One closure to 10,000 subscriptions, the daemon killed mid-batch and restarted."""

    @pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
    async def test_none_lost_none_twice(self, write_config: WriteConfig, vapid: tuple[Path, str],
                                        push_service: PushService, tmp_path: Path, stop: str) -> None:
        state = tmp_path / "state"
        fr = [push_service.subscribe() for _ in range(FR)]
        en = [push_service.subscribe() for _ in range(EN)]
        everything = [push_service.subscribe() for _ in range(ALL)]
        gone = [push_service.subscribe(gone=410 if i % 2 else 404) for i in range(GONE)]
        annexe = [push_service.subscribe() for _ in range(ANNEXE)]
        add(state, push_service, fr + gone)
        add(state, push_service, en, language="en")
        add(state, push_service, everything, kinds="all")
        add(state, push_service, annexe, site="annexe")
        push_service.delay = 0.005
        config = write_config(channels=push_channels(vapid[0], ("fr", "en"), CONNECTIONS))
        daemon = Daemon(config, state)
        await asyncio.to_thread(daemon.start)
        try:
            await asyncio.sleep(1.0)
            assert not closures(push_service)
            await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Dégât des eaux",
                                    "-m", "en:Water damage")
            await until(lambda: len(closures(push_service)) >= 2_000, "2,000 closures", timeout=30)
            await asyncio.to_thread(daemon.kill if stop == "SIGKILL" else daemon.terminate)
            doubt = in_doubt(state)
            before = len(closures(push_service))
            assert before < FR + EN + ALL, "the kill came after the batch: nothing was tested"
            push_service.limit(100, retry_after=1.0)  # the push service is busy when it comes back
            await asyncio.to_thread(daemon.start)
            live = fr + en + everything
            await until(lambda: set(closures(push_service)) >= {b.id for b in live}, "every closure", timeout=60)
            await asyncio.sleep(1.0)
        finally:
            await asyncio.to_thread(daemon.kill)
        got = closures(push_service)
        assert set(got) == {b.id for b in live}, "only the live subscriptions of main"
        twice = {b for b, n in got.items() if n > 1}
        assert max(got.values()) <= 2
        assert {push_service.endpoint(push_service.browsers[b]) for b in twice} <= doubt
        assert len(twice) <= CONNECTIONS + FLUSH + CHUNK
        held = Counter(b for (b, _), r in push_service.held.items() if r.payload.get("level") == "closed")
        assert set(held.values()) == {1}, "after Topic replacement, one closure per phone"
        assert not push_service.refused, push_service.refused
        assert push_service.answers[429] == 100
        bodies = {r.browser: r.payload["body"] for r in push_service.received}
        assert all(bodies[b.id].startswith("Bibliothèque centrale") for b in fr + everything)
        assert all(bodies[b.id].startswith("Central Library") for b in en), "each in its own language"
        if stop == "SIGTERM":
            assert not twice, "a graceful stop writes down every answer in hand"
        print(f"{stop} after {before} closures; {len(doubt)} in doubt; {len(twice)} sent twice")
        assert {r.urgency for r in push_service.received} == {"normal"}
        db = sqlite3.connect(store_file(state))
        endpoints = {row[0] for row in db.execute("SELECT endpoint FROM subscriptions")}
        db.close()
        assert endpoints == {push_service.endpoint(b) for b in live + annexe}, "gone ones deleted"
