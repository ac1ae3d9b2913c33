"""Tests for the seats, queue and sensor templates in alerts/: wording, rounding and length."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from statusd.compose.composer import Composer
from statusd.config.load import Config
from statusd.config.types import ChannelConfig
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target
from statusd.sensors.queue import round_wait

pytestmark = pytest.mark.unit

ALERTS = Path(__file__).resolve().parent.parent.parent / "alerts"
PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2026, 3, 10, 10, 5, tzinfo=PARIS)
SENSOR_KINDS = (
    EventKind.SEATS_CHANGED,
    EventKind.QUEUE_CHANGED,
    EventKind.SENSOR_LOST,
    EventKind.SENSOR_RESTORED,
)

CONFIG = """\
public_url: https://bib.test
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale Marguerite-Yourcenar, en: Marguerite Yourcenar Central Library,
           sv: Marguerite Yourcenar centralbibliotek}}
    timezone: Europe/Paris
    zones:
      floor1: {{name: {{fr: Rez-de-chaussée — salle d'actualité, en: Ground floor news room, sv: Entréplan nyhetsrum}}, capacity: 180}}
      floor2: {{name: {{fr: 2e étage, en: 2nd floor, sv: Plan 2}}, capacity: 240}}
      floor3: {{name: {{fr: 3e étage — salle de lecture, en: 3rd floor reading room, sv: Plan 3 läsesal}}, capacity: 120}}
    queues:
      entrance: {{name: {{fr: Entrée principale, en: Main entrance, sv: Huvudentrén}}}}
channels:
  console_fr: {{type: console, language: fr}}
  console_en: {{type: console, language: en}}
  console_sv: {{type: console, language: sv}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "statusd.yaml"
    path.write_text(CONFIG.format(alerts=ALERTS), encoding="utf-8")
    return load(path)


def sensor_event(kind: EventKind, **extra: Any) -> Event:
    return Event(
        kind,
        Target("main"),
        Level.OPEN,
        Level.OPEN,
        {},
        AT,
        "sensors",
        "r",
        reason="sensor",
        extra=extra,
    )


def text(config: Config, lang: str, event: Event) -> str:
    message = Composer(config).render(event, config.channels[f"console_{lang}"], None, len)
    return message.text.split("\n\n")[0]


def zone(zone_id: str, band: str, changed: bool, free: int, capacity: int = 240) -> dict[str, Any]:
    return {
        "id": zone_id,
        "band": band,
        "changed": changed,
        "free": free,
        "capacity": capacity,
        "occupied": capacity - free,
        "percent": round(100 * (capacity - free) / capacity),
        "previous_band": "busy",
    }


def waiting(minutes: float, estimate: bool = False) -> Event:
    wait = round_wait(minutes).as_dict()
    return sensor_event(
        EventKind.QUEUE_CHANGED,
        queue="entrance",
        band="x",
        wait=wait,
        estimate=estimate,
        queues=[{"id": "entrance", "changed": True, "wait": wait, "estimate": estimate}],
    )


class TestLength:
    """Every sensor template fits 280, 300 and 500 characters with the link, in every language."""

    @pytest.mark.parametrize("limit", [280, 300, 500])
    def test_check_finds_nothing(self, config: Config, limit: int) -> None:
        channels = [(c, limit, len) for c in config.channels.values()]
        assert Composer(config).check(channels) == []

    def test_check_tries_the_sensor_kinds(self, config: Config) -> None:
        channels = [(c, 40, len) for c in config.channels.values()]
        too_long = {Path(p.file).name for p in Composer(config).check(channels)}
        assert {
            f"{k.value}.{lang}.j2" for k in SENSOR_KINDS for lang in ("fr", "en", "sv")
        } <= too_long


class TestSeats:
    """A seats post names the zones that changed and, when one fills, where seats are free."""

    @pytest.mark.parametrize(
        ("lang", "expected"),
        [
            (
                "en",
                "Marguerite Yourcenar Central Library — 2nd floor: full. Seats free on: 3rd floor reading room.",
            ),
            (
                "fr",
                (
                    "Bibliothèque centrale Marguerite-Yourcenar — 2e étage : complet. "
                    "Places libres : 3e étage — salle de lecture."
                ),
            ),
            (
                "sv",
                "Marguerite Yourcenar centralbibliotek — Plan 2: fullt. Lediga platser: Plan 3 läsesal.",
            ),
        ],
    )
    def test_full_with_seats_elsewhere(self, config: Config, lang: str, expected: str) -> None:
        event = sensor_event(
            EventKind.SEATS_CHANGED,
            zone="floor2",
            band="full",
            zones=[
                zone("floor1", "nearly_full", False, 10),
                zone("floor2", "full", True, 0),
                zone("floor3", "free", False, 90, 120),
            ],
        )
        assert text(config, lang, event) == expected

    def test_seats_again(self, config: Config) -> None:
        event = sensor_event(
            EventKind.SEATS_CHANGED,
            zone="floor2",
            band="busy",
            zones=[zone("floor2", "busy", True, 70)],
        )
        assert (
            text(config, "en", event)
            == "Marguerite Yourcenar Central Library — 2nd floor: busy, 70 seats free."
        )

    def test_a_band_named_in_the_config(self, config: Config) -> None:
        event = sensor_event(EventKind.SEATS_CHANGED, zones=[zone("floor2", "very_busy", True, 5)])
        assert text(config, "en", event).endswith("2nd floor: very busy.")


class TestQueueWording:
    """The queue wait is announced rounded, in each language's words, flagged when estimated."""

    @pytest.mark.parametrize(
        ("minutes", "en", "fr", "sv"),
        [
            (0, "no queue right now", "pas de file d'attente en ce moment", "ingen kö just nu"),
            (3, "waiting time under 5 min", "attente de moins de 5 min", "väntetid under 5 min"),
            (42, "waiting time about 45 min", "attente d'environ 45 min", "väntetid cirka 45 min"),
            (57, "waiting time about 1 h", "attente d'environ 1 h", "väntetid cirka 1 tim"),
            (70, "waiting time over 1 h", "attente de plus d'1 h", "väntetid över 1 tim"),
            (
                100,
                "waiting time over 1 h 30",
                "attente de plus d'1 h 30",
                "väntetid över 1 tim 30 min",
            ),
            (
                150,
                "waiting time over 2 h 30",
                "attente de plus de 2 h 30",
                "väntetid över 2 tim 30 min",
            ),
        ],
    )
    def test_table(self, config: Config, minutes: float, en: str, fr: str, sv: str) -> None:
        for lang, words in (("en", en), ("fr", fr), ("sv", sv)):
            assert (
                text(config, lang, waiting(minutes)).split(": ", 1)[1].lstrip(": ") == words + "."
            )

    @pytest.mark.parametrize(
        ("lang", "flag"), [("en", "(estimate)"), ("fr", "(estimation)"), ("sv", "(uppskattning)")]
    )
    def test_estimate_is_said(self, config: Config, lang: str, flag: str) -> None:
        assert text(config, lang, waiting(42, estimate=True)).endswith(f" {flag}.")
        assert flag not in text(config, lang, waiting(42))


class TestSensorNotices:
    """Lost and restored notices name the zone and the time; only channels that ask carry them."""

    def test_lost(self, config: Config) -> None:
        event = sensor_event(
            EventKind.SENSOR_LOST, zone="floor3", last_seen="2026-03-10T09:58:00+01:00"
        )
        assert text(config, "fr", event).startswith(
            "Bibliothèque centrale Marguerite-Yourcenar : données en direct indisponibles pour "
            "3e étage — salle de lecture depuis 09:58."
        )

    @pytest.mark.parametrize(
        ("events", "kind", "carried"),
        [
            (None, EventKind.SENSOR_LOST, False),
            (None, EventKind.SEATS_CHANGED, True),
            (("status_changed",), EventKind.SENSOR_RESTORED, False),
            (("sensor_lost", "sensor_restored"), EventKind.SENSOR_LOST, True),
        ],
    )
    def test_only_channels_that_ask(
        self, events: tuple[str, ...] | None, kind: EventKind, carried: bool
    ) -> None:
        channel = ChannelConfig("c", "console", "fr", None, events, None, {})
        assert channel.carries("main", kind.value) is carried
