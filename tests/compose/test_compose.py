"""Tests for statusd.compose: events rendered for channels from the templates in alerts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from statusd.compose.composer import Composer, TemplateProblem
from statusd.config.load import Config
from statusd.config.types import ChannelConfig
from statusd.events import Event, EventKind
from statusd.loading import load
from statusd.model import Level, Target

pytestmark = pytest.mark.unit

ALERTS = Path(__file__).resolve().parent.parent.parent / "alerts"
PARIS = ZoneInfo("Europe/Paris")
STOCKHOLM = ZoneInfo("Europe/Stockholm")
LANGUAGES = ("fr", "en", "sv")
Measure = Callable[[str], int]

CONFIG = """\
public_url: https://bib.test
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    services:
      wifi: Wi-Fi
  annex:
    name: {{fr: Annexe, en: Annex, sv: Annexet}}
    timezone: Europe/Stockholm
channels:
  console_fr: {{type: console, language: fr}}
  console_en: {{type: console, language: en}}
  console_sv: {{type: console, language: sv}}
  toot: {{type: console, language: fr}}
"""


def at(year: int, month: int, day: int, hour: int) -> datetime:
    """A time in Stockholm (and Paris: the same zone offset all year)."""
    return datetime(year, month, day, hour, 0, tzinfo=STOCKHOLM)


def make_config(tmp_path: Path, alerts: Path = ALERTS) -> Config:
    path = tmp_path / "statusd.yaml"
    path.write_text(CONFIG.format(alerts=alerts), encoding="utf-8")
    return load(path)


def copy_alerts(tmp_path: Path) -> Path:
    """A private copy of the shipped alerts/ that a test may change."""
    return Path(shutil.copytree(ALERTS, tmp_path / "alerts"))


def event(
    kind: EventKind = EventKind.STATUS_CHANGED,
    target: str = "main",
    level: Level = Level.CLOSED,
    previous: Level = Level.OPEN,
    message: Mapping[str, str] | None = None,
    at: datetime = datetime(2026, 11, 24, 9, 0, tzinfo=PARIS),
    **extra: Any,
) -> Event:
    target_ = Target.parse(target)
    return Event(kind, target_, level, previous, message or {}, at, "desk", "r1", **extra)


def channel(config: Config, name: str) -> ChannelConfig:
    return config.channels[name]


def body(config: Config, name: str, sample: Event) -> str:
    """What `name` would post for `sample`, without the link."""
    return Composer(config).render(sample, channel(config, name), None, len).text.split("\n\n")[0]


def all_channels(config: Config, limit: int = 280) -> list[tuple[ChannelConfig, int, Measure]]:
    return [(c, limit, len) for c in config.channels.values()]


class TestShippedTemplates:
    """Every shipped template renders for every kind, language and level within common limits."""

    @pytest.mark.parametrize("limit", [280, 300, 500])
    @pytest.mark.parametrize("kind", list(EventKind))
    @pytest.mark.parametrize("language", LANGUAGES)
    def test_renders_within_limit(
        self, tmp_path: Path, limit: int, kind: EventKind, language: str
    ) -> None:
        config = make_config(tmp_path)
        composer = Composer(config)
        starts = datetime(2026, 11, 25, 18, 0, tzinfo=PARIS)
        until = datetime(2026, 11, 26, 10, 0, tzinfo=PARIS)
        for level in Level:
            previous = Level.CLOSED if level is Level.OPEN else Level.OPEN
            for message in ({}, {language: "Une très longue explication. " * 30}):
                for target in ("main", "main/wifi"):
                    sample = event(kind, target, level, previous, message,
                                   starts=starts, until=until)
                    settings = channel(config, f"console_{language}")
                    text = composer.render(sample, settings, limit, len).text
                    assert len(text) <= limit
                    assert text.endswith("https://bib.test/#main")

    @pytest.mark.parametrize(
        ("name", "sample", "expected"),
        [
            ("console_fr", event(until=at(2026, 11, 26, 10),
                                 message={"fr": "Fermeture exceptionnelle : incendie."}),
             "Bibliothèque centrale : fermé jusqu'à jeudi 26 novembre à 10:00. "
             "Fermeture exceptionnelle : incendie."),
            ("console_fr", event(target="main/wifi", level=Level.LIMITED,
                                 message={"fr": "Wi-Fi en panne au 2e étage"}),
             "Bibliothèque centrale — Wi-Fi : service réduit. Wi-Fi en panne au 2e étage"),
            ("console_fr", event(level=Level.OPEN, previous=Level.CLOSED, reason="expired"),
             "Bibliothèque centrale : de nouveau ouvert."),
            ("console_fr", event(EventKind.CLOSURE_PLANNED, "annex",
                                 message={"fr": "Fermeture pour les fêtes"},
                                 starts=at(2026, 12, 24, 18), until=at(2026, 12, 27, 10)),
             "Annexe : fermé du 24 déc. 18:00 au 27 déc. 10:00. Fermeture pour les fêtes"),
            ("console_fr", event(EventKind.CLOSURE_REMINDER, "annex", at=at(2026, 12, 23, 18),
                                 starts=at(2026, 12, 24, 18), until=at(2026, 12, 27, 10)),
             "Rappel — Annexe : fermé demain à partir de 18:00 jusqu'au 27 déc. 10:00."),
            ("console_en", event(level=Level.OPEN, previous=Level.CLOSED),
             "Central Library: open again."),
            ("console_en", event(target="main/wifi", level=Level.OPEN, previous=Level.LIMITED),
             "Central Library — Wi-Fi: working again."),
            ("console_sv", event(until=at(2026, 11, 24, 18)),
             "Centralbiblioteket: stängt till 18:00."),
        ],
    )
    def test_reads_as_patrons_expect(
        self, tmp_path: Path, name: str, sample: Event, expected: str
    ) -> None:
        config = make_config(tmp_path)
        text = Composer(config).render(sample, channel(config, name), 500, len).text
        assert text == f"{expected}\n\nhttps://bib.test/#{sample.target.site}"

    @pytest.mark.parametrize(
        ("language", "marker"), [("fr", "⚠ URGENCE"), ("en", "⚠ EMERGENCY"), ("sv", "⚠ NÖDLÄGE")]
    )
    def test_emergency_starts_with_a_word(self, tmp_path: Path, language: str, marker: str) -> None:
        config = make_config(tmp_path)
        assert body(config, f"console_{language}", event(level=Level.EMERGENCY)).startswith(marker)

    def test_message_carries_the_event(self, tmp_path: Path) -> None:
        config = make_config(tmp_path)
        sample = event(target="main/wifi", level=Level.LIMITED)
        result = Composer(config).render(sample, channel(config, "console_en"), 280, len)
        assert result.language == "en"
        assert result.link == "https://bib.test/#main"
        assert (result.event_id, result.kind, result.target, result.level) == (
            sample.id, "status_changed", "main/wifi", "limited")


class TestTemplateChoice:
    """A template for the channel's name wins over one for its type, which wins over the default."""

    @pytest.mark.parametrize(
        ("folders", "expected"),
        [
            ((), "Bibliothèque centrale : fermé."),
            (("console",), "by type"),
            (("console", "toot"), "by name"),
            (("toot",), "by name"),
        ],
    )
    def test_most_specific_template_wins(
        self, tmp_path: Path, folders: tuple[str, ...], expected: str
    ) -> None:
        alerts = copy_alerts(tmp_path)
        for folder in folders:
            (alerts / folder).mkdir()
            text = "by name" if folder == "toot" else "by type"
            (alerts / folder / "status_changed.fr.j2").write_text(text, encoding="utf-8")
        config = make_config(tmp_path, alerts)
        assert body(config, "toot", event()).startswith(expected)

    def test_override_only_affects_its_channel(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "toot").mkdir()
        (alerts / "toot" / "status_changed.fr.j2").write_text("by name", encoding="utf-8")
        config = make_config(tmp_path, alerts)
        assert body(config, "console_fr", event()) == "Bibliothèque centrale : fermé."


class TestTemplateProblems:
    """A template that cannot render raises TemplateProblem naming its file and line."""

    @pytest.mark.parametrize(
        ("source", "line", "words"),
        [
            ("{{ ''.__class__.__mro__ }}", 1, "not allowed"),
            ("ok\n{{ cycler.__init__.__globals__ }}", 2, "not allowed"),
            ("{{ site.__class__ }}", 1, "not allowed"),
            ("{{ 'x' * 100000000 }}", 1, "not allowed"),
            ("{{ site }}\n\n{{ nonsense }}", 3, "'nonsense' is undefined"),
            ("{{ until.nope }}", 1, "has no attribute 'nope'"),
            ("{{ site }}\n{% if level %}\nno end", 3, "endif"),
            ("{{ 1 / 0 }}", 1, "ZeroDivisionError"),
        ],
    )
    def test_bad_template_raises(self, tmp_path: Path, source: str, line: int, words: str) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "status_changed.fr.j2").write_text(source, encoding="utf-8")
        config = make_config(tmp_path, alerts)
        sample = event(until=datetime(2026, 11, 26, 10, 0, tzinfo=PARIS))
        with pytest.raises(TemplateProblem) as caught:
            Composer(config).render(sample, channel(config, "console_fr"), 280, len)
        problem = caught.value.problem
        assert (problem.file, problem.line) == (str(alerts / "status_changed.fr.j2"), line)
        assert words in problem.text
        assert str(caught.value).startswith(f"{alerts / 'status_changed.fr.j2'}:{line}:")

    def test_missing_template_names_the_default_file(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "status_changed.sv.j2").unlink()
        config = make_config(tmp_path, alerts)
        with pytest.raises(TemplateProblem, match="status_changed.sv.j2: is missing"):
            Composer(config).render(event(), channel(config, "console_sv"), 280, len)

    def test_missing_label_names_labels_yaml(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        labels = alerts / "labels.yaml"
        text = labels.read_text(encoding="utf-8").replace("  closed: stängt\n", "")
        labels.write_text(text, encoding="utf-8")
        config = make_config(tmp_path, alerts)
        expected = r"labels.yaml:\d+: sv: has no wording for 'closed'"
        with pytest.raises(TemplateProblem, match=expected):
            Composer(config).render(event(), channel(config, "console_sv"), 280, len)

    def test_broken_labels_file_is_named_with_its_line(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "labels.yaml").write_text("fr:\n  open: ouvert\n  closed: [fermé\n", encoding="utf-8")
        config = make_config(tmp_path, alerts)
        composer = Composer(config)
        with pytest.raises(TemplateProblem, match=r"labels.yaml:\d+: invalid YAML"):
            composer.render(event(), channel(config, "console_fr"), 280, len)
        assert any("invalid YAML" in p.text and p.line for p in composer.check([]))



class TestContext:
    """Templates see the staff message in the channel's language, and times in the site's zone."""

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            ({"en": "Fire.", "fr": "Incendie.", "sv": "Brand."}, "Fire."),
            ({"fr": "Incendie.", "sv": "Brand."}, "Incendie."),  # the default language, fr
            ({"sv": "Brand."}, "Brand."),  # any language rather than nothing
            ({"en": "  ", "fr": "Incendie."}, "Incendie."),  # a blank text counts as none
            ({}, "Central Library: closed."),
        ],
    )
    def test_message_falls_back(
        self, tmp_path: Path, message: dict[str, str], expected: str
    ) -> None:
        config = make_config(tmp_path)
        assert body(config, "console_en", event(message=message)).endswith(expected)

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("console_sv", "Annexet: stängt till torsdag 26 november kl. 10:00."),
            ("console_en", "Annex: closed until Thursday, November 26 at 10:00\u202fAM."),
            ("console_fr", "Annexe : fermé jusqu'à jeudi 26 novembre à 10:00."),
        ],
    )
    def test_times_are_shown_in_the_site_time_zone(
        self, tmp_path: Path, name: str, expected: str
    ) -> None:
        config = make_config(tmp_path)
        until = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # 10:00 in Stockholm
        now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
        assert body(config, name, event(target="annex", until=until, at=now)) == expected

    @pytest.mark.parametrize(
        ("until", "expected"),
        [
            (datetime(2026, 11, 24, 17, 0, tzinfo=UTC), "jusqu'à 18:00."),
            (datetime(2026, 11, 24, 23, 30, tzinfo=UTC), "jusqu'à demain à 00:30."),
            (datetime(2027, 9, 1, 8, 0, tzinfo=UTC),
             "jusqu'à mercredi 1 septembre 2027 à 10:00."),
        ],
    )
    def test_day_is_said_relative_to_the_event(
        self, tmp_path: Path, until: datetime, expected: str
    ) -> None:
        config = make_config(tmp_path)
        assert body(config, "console_fr", event(until=until)).endswith(expected)

    def test_time_forms_are_available_to_templates(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "status_changed.fr.j2").write_text(
            "{{ until.date }}|{{ until.time }}|{{ until.day }}|{{ until.short }}|{{ until.iso }}|"
            "{{ at }}|{{ starts is none }}|{{ reason }}|{{ kind }}|"
            "{{ previous }}/{{ previous_code }}|{{ link }}",
            encoding="utf-8")
        config = make_config(tmp_path, alerts)
        assert body(config, "console_fr", event(until=at(2026, 11, 26, 10))) == (
            "jeudi 26 novembre|10:00|jeudi 26 novembre|26 nov. 10:00|2026-11-26T10:00:00+01:00|"
            "09:00|True|staff|status_changed|ouvert/open|https://bib.test/#main")

    def test_edited_labels_are_used_without_restart(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        config = make_config(tmp_path, alerts)
        composer = Composer(config)
        composer.render(event(), channel(config, "console_fr"), None, len)
        labels = alerts / "labels.yaml"
        text = labels.read_text(encoding="utf-8").replace("closed: fermé", "closed: fermée")
        labels.write_text(text, encoding="utf-8")
        os.utime(labels, (1, 1))  # a different mtime even on coarse file systems
        text = composer.render(event(), channel(config, "console_fr"), None, len).text
        assert text.startswith("Bibliothèque centrale : fermée.")


class TestAgain:
    """A channel that refuses repeats gets the post's variant with the time of the change."""

    @pytest.mark.parametrize(("name", "tail"), [("console_fr", "(mise à jour de 09:00)"),
                                                ("console_en", "(update at 9:00\u202fAM)"),
                                                ("console_sv", "(uppdatering kl. 09:00)")])
    def test_the_time_in_the_site_zone_and_language(self, tmp_path: Path, name: str, tail: str) -> None:
        config = make_config(tmp_path)
        sample = event(at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC))  # 09:00 in Paris
        message = Composer(config).render(sample, channel(config, name), 280, len, again=True)
        plain, link = message.text.split("\n\n")
        assert message.again == f"{plain} {tail}\n\n{link}"

    def test_only_when_asked(self, tmp_path: Path) -> None:
        config = make_config(tmp_path)
        assert Composer(config).render(event(), channel(config, "console_fr"), 280, len).again is None

    def test_labels_without_the_word_use_the_time_in_brackets(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        labels = alerts / "labels.yaml"
        labels.write_text(labels.read_text(encoding="utf-8").replace('  again: "(mise à jour de {time})"\n', ""),
                          encoding="utf-8")
        config = make_config(tmp_path, alerts)
        message = Composer(config).render(event(), channel(config, "console_fr"), 280, len, again=True)
        assert message.again is not None and message.again.split("\n\n")[0].endswith(". (09:00)")


class TestCheck:
    """check() lists every problem in alerts/, each naming the file and, where known, the line."""

    def test_shipped_templates_have_no_problems(self, tmp_path: Path) -> None:
        config = make_config(tmp_path)
        assert Composer(config).check(all_channels(config)) == []

    def test_reports_a_missing_language(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "closure_planned.sv.j2").unlink()
        config = make_config(tmp_path, alerts)
        problems = Composer(config).check([])
        assert [(p.file, p.text) for p in problems] == [
            (str(alerts / "closure_planned.sv.j2"),
             "is missing; every event kind needs a template in each configured language")]

    def test_reports_a_syntax_error_with_its_line(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "toot").mkdir()
        broken = alerts / "toot" / "closure_reminder.fr.j2"
        broken.write_text("Rappel\n{{ site }\n", encoding="utf-8")
        config = make_config(tmp_path, alerts)
        problems = Composer(config).check(all_channels(config))
        assert {(p.file, p.line) for p in problems} == {(str(broken), 2)}

    @pytest.mark.parametrize(
        ("source", "line", "words"),
        [
            ("{{ site }}{% if until %} {{ until.nope }}{% endif %}", 1, "has no attribute 'nope'"),
            ("{{ site }}\n{% if reopening %}{{ previous_level }}{% endif %}", 2,
             "'previous_level' is undefined"),
        ],
    )
    def test_reports_failures_seen_only_in_some_samples(
        self, tmp_path: Path, source: str, line: int, words: str
    ) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "status_changed.en.j2").write_text(source, encoding="utf-8")
        config = make_config(tmp_path, alerts)
        problems = Composer(config).check(all_channels(config))
        assert len(problems) == 1
        assert (problems[0].file, problems[0].line) == (str(alerts / "status_changed.en.j2"), line)
        assert words in problems[0].text

    def test_reports_a_template_too_long_for_a_channel(self, tmp_path: Path) -> None:
        config = make_config(tmp_path)
        problems = Composer(config).check([(channel(config, "console_sv"), 60, len)])
        assert {p.file for p in problems} == {str(ALERTS / f"{k.value}.sv.j2") for k in EventKind}
        assert all(p.field == "channel console_sv" for p in problems)
        assert all("over the limit of 60" in p.text for p in problems)

    def test_reports_labels_and_stray_files(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        labels = alerts / "labels.yaml"
        text = labels.read_text(encoding="utf-8").replace("tomorrow: i morgon", "tomorow: i morgon")
        labels.write_text(text, encoding="utf-8")
        (alerts / "status_change.fr.j2").write_text("typo in the name", encoding="utf-8")
        config = make_config(tmp_path, alerts)
        problems = Composer(config).check([])
        tomorow_line = text.splitlines().index("  tomorow: i morgon") + 1
        assert [(Path(p.file).name, p.line, p.field) for p in problems] == [
            ("labels.yaml", tomorow_line, "sv.tomorow"),
            ("status_change.fr.j2", None, ""),
            ("labels.yaml", text.splitlines().index("sv:") + 1, "sv"),
        ]
        assert "is never used" in problems[1].text


class TestOncePerEvent:
    """One event to many channels: each text is made once per channel type, own templates and language."""

    def test_made_once_and_the_same(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config = make_config(tmp_path)
        composer = Composer(config)
        made: list[str] = []
        real = composer._body

        def counting(sample: Event, settings: ChannelConfig) -> tuple[str, str]:
            made.append(settings.name)
            return real(sample, settings)

        monkeypatch.setattr(composer, "_body", counting)
        sample = event(message={"fr": "Fuite d'eau."})
        texts = [composer.render(sample, channel(config, name), 280, len).text for name in ("console_fr", "toot")]
        assert made == ["console_fr"] and texts[0] == texts[1]
        assert texts[0].split("\n\n")[0] == body(config, "console_fr", sample)
        composer.render(event(message={"fr": "Autre chose."}), channel(config, "toot"), 280, len)
        assert made == ["console_fr", "toot"]  # a new event: made again

    def test_a_channel_with_its_own_templates_gets_its_own_text(self, tmp_path: Path) -> None:
        alerts = copy_alerts(tmp_path)
        (alerts / "toot").mkdir()
        (alerts / "toot" / "status_changed.fr.j2").write_text("Pouet : {{ site }} {{ level }}.\n")
        config = make_config(tmp_path, alerts)
        composer = Composer(config)
        sample = event()
        shared = composer.render(sample, channel(config, "console_fr"), 280, len).text
        own = composer.render(sample, channel(config, "toot"), 280, len).text
        assert own.startswith("Pouet : Bibliothèque centrale") and not shared.startswith("Pouet")
