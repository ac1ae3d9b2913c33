"""A pushed status kept at a start only for what statusd.yaml still knows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from statusd.config.load import Config
from statusd.model import Level, StatusEntry, Target
from statusd.sources.status.unwritten import adopt

pytestmark = pytest.mark.unit

ENTRY = StatusEntry(Level.EMERGENCY, {"en": "Fire alarm"}, by="feed:panel", at=datetime(2026, 12, 2, tzinfo=UTC))
SEEN = (1, 2, 100 * 10**9)  # the file last changed at 100 s; the push was recorded at 200 s


@pytest.mark.parametrize("target", [Target("gone"), Target("main", "gone"), Target("annexe", "wifi")])
def test_not_for_a_site_or_service_taken_out_of_the_config(config: Config, target: Target) -> None:
    # set_entry refuses an unknown target: kept, it would fail to be written every WRITE_RETRY, for ever.
    assert target.service is None or target.service not in config.sites[target.site].services
    pending: dict[Target, Any] = {}
    assert not adopt(pending, {target: (ENTRY, 200.0)}, {}, SEEN, config)
    assert pending == {}


def test_a_configured_service_still_is(config: Config) -> None:
    pending: dict[Target, Any] = {}
    assert adopt(pending, {Target("main", "wifi"): (ENTRY, 200.0)}, {}, SEEN, config)
    assert list(pending) == [Target("main", "wifi")]


def test_nothing_without_a_usable_file(config: Config) -> None:
    assert not adopt({}, {Target("main"): (ENTRY, 200.0)}, None, SEEN, config)
