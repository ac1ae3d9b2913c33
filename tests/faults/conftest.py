"""Fixtures of the fault suite, and the summary table printed at the end of the run.

pytest calls `pytest_terminal_summary` on every registered plugin, and this conftest is
registered as soon as its directory is collected, whether the run names the whole tree,
this directory or one file in it. When no fault test ran, nothing is printed.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import structlog

from tests.conftest import WriteConfig
from tests.faults import fleet as fleet_module
from tests.faults.summary import LEDGER, Ledger
from tests.support.fakes import bluesky as bluesky_fake
from tests.support.fakes import x as x_fake

SEED_VARIABLE = "STATUSD_FAULT_SEED"
# Hours of traffic squeezed into about a minute: the platforms' own rate windows (X's
# 15-minute post window, Bluesky's 5-minute session window) are squeezed alike.
COMPRESSION = 60.0


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = LEDGER.table()
    if not lines:
        return
    terminalreporter.section("fault tests: trials, faults injected, deliveries")
    for line in lines:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def quiet_desk() -> Iterator[None]:
    """The desk's own info logs (one per flip, hundreds) kept out of failure reports."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.configure(**saved)


@pytest.fixture
def compressed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fakes' rate-limit windows shortened by COMPRESSION, as the traffic is."""
    monkeypatch.setattr(x_fake, "WINDOW", x_fake.WINDOW / COMPRESSION)
    monkeypatch.setattr(bluesky_fake, "SESSION_WINDOW", bluesky_fake.SESSION_WINDOW / COMPRESSION)


@pytest.fixture
def ledger() -> Ledger:
    """Where each fault test records its row of the summary table."""
    return LEDGER


@pytest.fixture
def rng() -> random.Random:
    """A seeded random source; the seed is printed (shown on failure) so a run can be repeated."""
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))
    print(f"fault test seed: {SEED_VARIABLE}={seed}")
    return random.Random(seed)


@pytest.fixture
async def fleet_factory(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Start a Fleet (every fake, proxied); every one started is stopped at teardown."""
    started: list[fleet_module.Fleet] = []

    async def make(rng: random.Random, hooks: dict[str, fleet_module.Hook], **options: object) -> fleet_module.Fleet:
        fleet = await fleet_module.Fleet.start(tmp_path, rng, hooks, **options)  # type: ignore[arg-type]
        started.append(fleet)
        return fleet

    yield make
    for fleet in started:
        await fleet.stop()


@pytest.fixture
def fault_config(write_config: WriteConfig) -> Callable[..., Path]:
    """statusd.yaml with the given channels, the HTTP readings feed and quick sensor rules."""

    def write(channels: str, deadline: str = "1h", status: str | None = "main:\n  level: open\n") -> Path:
        path = write_config(channels, deadline=deadline, status=status)
        path.write_text(path.read_text(encoding="utf-8") + fleet_module.FEEDS, encoding="utf-8")
        return path

    return write
