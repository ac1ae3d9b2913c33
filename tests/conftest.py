"""Shared fixtures: a small library network's config written to a temporary directory."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, settings

from statusd import loading
from statusd.config.load import Config
from tests.support.channels import ChannelBuilder
from tests.support.postgres import postgres_database, postgres_dsn, postgres_server  # noqa: F401 (fixtures)

# Speed is measured in benchmarks, never in tests: no per-example deadline, and
# no failure because a slow machine generated few examples.
settings.register_profile("statusd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("statusd")

REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "alerts"

BASE = """
public_url: http://127.0.0.1:8080
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    services: {{wifi: Wi-Fi, printing: {{fr: Impression, en: Printing, sv: Utskrifter}}}}
    zones: {{floor2: {{name: 2e étage, capacity: 240}}}}
    queues: {{entrance: {{name: Entrée}}}}
  annexe:
    name: {{fr: Annexe, en: Annexe, sv: Annexet}}
    timezone: Europe/Stockholm
channels:
{channels}
delivery:
  deadline: {deadline}
  backoff: 0.05s
  backoff_max: 0.5s
  timeout: 2s
  reminder: 1d
  grace: 3s
"""

CONSOLE = "  console: {type: console, language: fr}"

WriteConfig = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write statusd.yaml (and an empty-ish status.yaml) into tmp_path; return the config path."""

    def write(channels: str = CONSOLE, deadline: str = "1h", status: str | None = "main:\n  level: open\n") -> Path:
        path = tmp_path / "statusd.yaml"
        path.write_text(BASE.format(alerts=ALERTS, channels=channels, deadline=deadline), encoding="utf-8")
        if status is not None:
            (tmp_path / "status.yaml").write_text(status, encoding="utf-8")
        return path

    return write


@pytest.fixture
def config(write_config: WriteConfig) -> Config:
    """The default test config: sites main and annexe, one console channel in French."""
    return loading.load(write_config())


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts with structlog's defaults: a command run in-process (`main([...])`)
    configures logging at WARNING, which would hide the next test's info events."""
    yield
    structlog.reset_defaults()


@pytest.fixture
async def channel_builder(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ChannelBuilder]:
    """Real channels built from a statusd.yaml as the daemon builds them; all closed after the test."""
    builder = ChannelBuilder(monkeypatch)
    yield builder
    await builder.close()
