"""Hostile review of the facade and the operator's endpoints with a PostgreSQL server that is down:
/readyz said "ready" and "store: ok" (only a failed write set the store's trouble, and an idle daemon
writes nothing), and /metrics answered 500 with a traceback in the log."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import structlog

from statusd.config.load import Config
from statusd.outbox import health
from statusd.outbox.facade import AsyncStore
from statusd.outbox.postgres import PostgresStore
from statusd.web.ops import Ops, OpsView
from statusd.web.state import WebState

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def ops(config: Config) -> AsyncIterator[Ops]:
    """The operator's listener over a store whose server is not there (nothing listens on its port)."""
    store = PostgresStore(f"postgresql://statusd@127.0.0.1:{closed_port()}/statusd", "pw-never-shown-0123",
                          timeout=1.0)
    facade = AsyncStore(store, timeout=5.0)

    async def channels() -> dict[str, dict[str, Any]]:
        return await facade.run(health.report, ["console"], {}, {})

    served = Ops(OpsView(facade, WebState(config), channels, lambda: {}, lambda: True), "127.0.0.1", 0)
    await served.start()
    yield served
    await served.stop()
    await facade.close()


async def test_readyz_says_the_store_cannot_be_read(ops: Ops) -> None:
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{ops.port}/readyz") as answer:
            status, body = answer.status, await answer.json()
    assert status == 503 and body["ready"] is False
    assert body["store"].startswith("the store postgresql://statusd@127.0.0.1:") and any(w in body["store"] for w in ("cannot be read", "cannot be used"))
    assert "pw-never-shown" not in repr(body) + repr(logs)


async def test_metrics_is_503_not_a_traceback(ops: Ops) -> None:
    with structlog.testing.capture_logs() as logs:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{ops.port}/metrics") as answer:
            status, text = answer.status, await answer.text()
    assert status == 503 and "cannot be read" in text and "Traceback" not in text
    assert [line["event"] for line in logs] == ["store_unavailable"]
    assert "pw-never-shown" not in repr(logs)
