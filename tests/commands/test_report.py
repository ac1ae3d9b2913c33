"""`statusd show` and `statusd history` print every time in one zone, and say which."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd.compose.message import Message
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.outbox.sqlite import SqliteStore
from statusd.outbox.store import Planned
from tests.conftest import WriteConfig

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
# Two sites in two zones: times must still come in one.
STATUS = """\
main:
  level: closed
  message: {fr: Fermé}
  until: 2031-11-26T10:00:00+01:00
annexe:
  level: closed
  message: {fr: Fermé}
  until: 2031-11-26T10:00:00+01:00
"""
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? ([A-Z]{3,4}|[+-]\d{2,4})")


def cli(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(config), "--state-dir",
                           str(config.parent / "state"), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def config(write_config: WriteConfig, tmp_path: Path) -> Path:
    path = write_config(status=STATUS)
    store = SqliteStore(tmp_path / "state" / "statusd.db")
    ev = Event(EventKind.STATUS_CHANGED, Target.parse("annexe"), Level.CLOSED, Level.OPEN, {"fr": "x"},
               NOW, "alice", "r1")
    message = Message("Fermé", "fr", None, ev.id, ev.kind.value, "annexe", "closed")
    store.record([(ev, [Planned("console", message, delay=600.0)])], {}, deadline=3600.0)
    store.close()
    return path


class TestOneZone:
    """Each time carries its zone's abbreviation, and all are in the zone the heading names."""

    def test_show_uses_the_first_sites_zone(self, config: Path) -> None:
        out = cli(config, "show")
        assert out.startswith("Times in Europe/Paris")
        zones = {m.group(1) for m in STAMP.finditer(out)}
        assert zones and zones <= {"CET", "CEST"}  # the Stockholm annexe too
        assert "until 2031-11-26 10:00 CET" in out

    def test_history_labelled_in_the_same_zone(self, config: Path) -> None:
        out = cli(config, "history")
        assert out.startswith("Times in Europe/Paris")
        assert {m.group(1) for m in STAMP.finditer(out)} <= {"CET", "CEST"}
        assert len(STAMP.findall(out)) >= 2  # the update and its next attempt

    def test_another_zone_on_request(self, config: Path) -> None:
        out = cli(config, "show", "--tz", "UTC")
        assert out.startswith("Times in UTC")
        assert "until 2031-11-26 09:00 UTC" in out
        assert {m.group(1) for m in STAMP.finditer(out)} == {"UTC"}

    def test_unknown_zone_is_refused_clearly(self, config: Path) -> None:
        done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(config), "show", "--tz",
                               "Mars/Olympus"], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0
        assert "--tz 'Mars/Olympus' is not a time zone" in done.stderr
        assert "Traceback" not in done.stderr
