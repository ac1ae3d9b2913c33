"""The operator's listener: /readyz and /metrics on their own address, naming no file or variable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from statusd.config.load import Config
from statusd.outbox.facade import AsyncStore
from statusd.outbox.sqlite import SqliteStore
from statusd.web.ops import Ops, OpsView
from statusd.web.state import WebState

pytestmark = pytest.mark.e2e


@pytest.fixture
async def ops(config: Config, tmp_path: Path) -> AsyncIterator[Ops]:
    store = SqliteStore(tmp_path / "statusd.db")
    inactive = {"mastodon": "off until file /etc/credstore/statusd.mastodon-token is set"}
    from statusd.outbox import health

    facade = AsyncStore(store)

    async def channels() -> dict[str, dict[str, Any]]:
        return await facade.run(health.report, ["console"], {}, {})

    view = OpsView(facade, WebState(config), channels, lambda: inactive, lambda: True)
    served = Ops(view, "127.0.0.1", 0)
    await served.start()
    yield served
    await served.stop()
    store.close()


class TestOps:
    """Ready with each channel's state; a missing secret is "off: secret missing", with no path."""

    async def test_readyz(self, ops: Ops) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ops.port}/readyz") as answer:
                assert answer.status == 200
                body = await answer.json()
                text = await answer.text()
        assert body["channels"]["console"] == {"state": "ok", "pending": 0}
        assert body["channels"]["mastodon"] == {"state": "off", "reason": "secret missing"}
        assert "credstore" not in text and "/etc" not in text

    async def test_metrics_and_health(self, ops: Ops) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ops.port}/metrics") as answer:
                assert answer.status == 200 and "statusd_sse_subscribers" in await answer.text()
            async with session.get(f"http://127.0.0.1:{ops.port}/healthz") as answer:
                assert answer.status == 200

    def test_default_address_is_loopback(self, config: Config) -> None:
        assert (config.ops_host, config.ops_port) == ("127.0.0.1", 9108)
