"""status.yaml → Wanted: the example, the time forms, and what people get wrong."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from statusd import loading
from statusd.errors import ConfigError
from statusd.model import LEVELS, Level, StatusEntry, Target
from statusd.sources.status import file as status_file

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent.parent / "data" / "status"
PARIS = ZoneInfo("Europe/Paris")
CONFIG = loading.load(DATA / "statusd.yaml")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        status_file.parse(text, "status.yaml", CONFIG)
    return [str(p) for p in caught.value.problems]


class TestTheExample:
    """The documented example reads into one entry per site and service it mentions."""

    def test_every_target(self) -> None:
        wanted = status_file.read(DATA / "status.yaml", CONFIG)
        assert wanted == {
            Target("main"): StatusEntry(
                Level.CLOSED,
                {"fr": "Fermeture exceptionnelle : incendie.", "en": "Closed today after a fire."},
                until=paris(2026, 11, 26, 10, 0),
                by="alice",
                at=paris(2026, 11, 24, 21, 30),
            ),
            Target("main", "wifi"): StatusEntry(Level.LIMITED, {"fr": "Wi-Fi en panne au 2e étage"}),
            Target("annexe"): StatusEntry(
                Level.CLOSED,
                {"fr": "Fermeture pour les fêtes"},
                starts=paris(2026, 12, 24, 18, 0),
                until=paris(2026, 12, 27, 10, 0),
            ),
        }

    def test_times_are_in_the_site_zone(self) -> None:
        wanted = status_file.read(DATA / "status.yaml", CONFIG)
        assert wanted[Target("main")].until.tzinfo == PARIS  # type: ignore[union-attr]
        assert wanted[Target("main")].at.tzinfo == PARIS  # type: ignore[union-attr]


class TestDefaults:
    """What the file leaves out means open, no message, no times."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("annexe: {level: limited}\n", {Target("annexe"): StatusEntry(Level.LIMITED)}),
            ("main: {message: Ouvert tard}\n", {Target("main"): StatusEntry(Level.OPEN, {"fr": "Ouvert tard"})}),
            (
                "main:\n  services:\n    printing: {level: closed, message: {en: Broken}}\n",
                {
                    Target("main"): StatusEntry(),
                    Target("main", "printing"): StatusEntry(Level.CLOSED, {"en": "Broken"}),
                },
            ),
            ("main: {level: open, message: {}}\n", {Target("main"): StatusEntry()}),
        ],
        ids=["site-only", "no-level-is-open", "service-only", "empty-message-mapping"],
    )
    def test_reads(self, text: str, expected: dict[Target, StatusEntry]) -> None:
        assert status_file.parse(text, "status.yaml", CONFIG) == expected


class TestTimeForms:
    """Every documented way of writing a time gives the same moment in the site's zone."""

    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("2026-11-26 10:00", paris(2026, 11, 26, 10, 0)),
            ("'2026-11-26 10:00'", paris(2026, 11, 26, 10, 0)),
            ("2026-11-26 10:00:30", paris(2026, 11, 26, 10, 0, 30)),  # YAML makes a naive datetime
            ("2026-11-26T10:00", paris(2026, 11, 26, 10, 0)),
            ("2026-11-26", paris(2026, 11, 26, 0, 0)),  # YAML makes a date
            ("2026-11-26T09:00:00+00:00", paris(2026, 11, 26, 10, 0)),
            ("2026-11-26T09:00:00Z", paris(2026, 11, 26, 10, 0)),
            ("'2026-11-26T10:00:00+01:00'", paris(2026, 11, 26, 10, 0)),
            ("2026-07-01 10:00", paris(2026, 7, 1, 10, 0)),  # summer time: +02:00
        ],
    )
    def test_until(self, written: str, expected: datetime) -> None:
        wanted = status_file.parse(f"main:\n  until: {written}\n", "status.yaml", CONFIG)
        until = wanted[Target("main")].until
        assert until == expected
        assert until is not None and until.utcoffset() == expected.utcoffset()
        assert type(until) is datetime  # not YAML's own subclass


class TestMistakes:
    """Each mistake people make is reported with its line and field and what would be right."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("main:\n  level: closed\n message: x\n", "status.yaml:3:2: invalid YAML"),
            ("main:\n  level: closed\n    message: x\n", "status.yaml:3:12: invalid YAML"),
            ("main:\n\tlevel: closed\n", "status.yaml:2:1: invalid YAML: found character '\\t' that cannot start any token; indent with spaces, not tabs"),
            ("main:\n  level: Closed\n", "status.yaml:2: main.level: use lower case 'closed'"),
            ("main:\n  level: clossed\n", "status.yaml:2: main.level: unknown level 'clossed' (did you mean 'closed'?); use one of open, limited, closed, emergency"),
            ("main:\n  level:\n", "status.yaml:2: main.level: should be one of open, limited, closed, emergency, got nothing"),
            ("mian:\n  level: closed\n", "status.yaml:1: mian: unknown site 'mian' (did you mean 'main'?); known sites: main, annexe"),
            ("annexe:\n  level: closed\n  from: 2026-12-27 10:00\n  until: 2026-12-24 18:00\n", "status.yaml:3: annexe.from: should be before until (2026-12-24 18:00), got 2026-12-27 10:00"),
            ("annexe:\n  level: closed\n  from: 2026-12-24 18:00\n  until: 2026-12-24 18:00\n", "status.yaml:3: annexe.from: should be before until"),
            ("main:\n  level: closed\n  message: 42\n", "status.yaml:3: main.message: should be a text or a mapping of language to text, got 42"),
            ("main:\n  message: [fr, Fermé]\n", "status.yaml:2: main.message: should be a text or a mapping of language to text, got a list"),
            ("main:\n  message: ''\n", "status.yaml:2: main.message: is empty"),
            ("main:\n  message: {de: Geschlossen}\n", "status.yaml:2: main.message.de: unknown language 'de'; configured languages: fr, en, sv"),
            ("main:\n  message: {fr: 42}\n", "status.yaml:2: main.message.fr: should be a non-empty text, got 42"),
            ("main:\n  - level: closed\n", "status.yaml:1: main: should be a mapping such as {level: closed, message: ...}, got a list"),
            ("main: closed\n", "status.yaml:1: main: should be a mapping such as {level: closed, message: ...}, got 'closed'"),
            ("- main\n", "status.yaml:1: should be a mapping of site to status"),
            ("", "status.yaml:1: is empty; a truncated write? the last good status stays in force"),
            ("# everything is open\n\n# (nothing else)\n", "status.yaml:1: is empty; a truncated write?"),
            ("main:\n  level: closed\n  level: open\n", "status.yaml:3:3: invalid YAML: found duplicate key \"level\""),
            ("main:\n  level: closed\nmain:\n  level: open\n", "status.yaml:3:1: invalid YAML: found duplicate key \"main\""),
            ("main:\n  untill: 2026-11-26 10:00\n", "status.yaml:2: main.untill: unknown key; expected one of: level, message, from, until, by, at, services"),
            ("main:\n  services:\n    wifi:\n      services: {}\n", "status.yaml:4: main.services.wifi.services: unknown key; expected one of: level, message, from, until, by, at\n"[:-1]),
            ("main:\n  until: tomorrow\n", "status.yaml:2: main.until: should be a time such as \"YYYY-MM-DD HH:MM\""),
            ("main:\n  until: 2026-13-01 10:00\n", "status.yaml:2: main.until: should be a time such as"),
            ("main:\n  until: 0001-01-01 00:00\n", "status.yaml:2: main.until: year 1 is out of range"),
            ("main:\n  until: 26/11/2026\n", "status.yaml:2: main.until: should be a time such as"),
            ("main:\n  until:\n", "status.yaml:2: main.until: is empty"),
            ("main:\n  by: 42\n", "status.yaml:2: main.by: should be a non-empty text, got 42"),
            ("main:\n  services:\n    wfi: {level: closed}\n", "status.yaml:3: main.services.wfi: unknown service 'wfi' (did you mean 'wifi'?); services of main: wifi, printing"),
            ("annexe:\n  services:\n    wifi: {level: closed}\n", "status.yaml:3: annexe.services.wifi: unknown service 'wifi'; site annexe has no services"),
            ("main:\n  services: wifi\n", "status.yaml:2: main.services: should be a mapping of service to status, got 'wifi'"),
            ("main:\n  services:\n", "status.yaml:2: main.services: is empty"),
            ("main:\n  services:\n    wifi:\n", "status.yaml:3: main.services.wifi: has nothing under it"),
            ("main:\n  services:\n    wifi: [limited]\n", "status.yaml:3: main.services.wifi: should be a mapping"),
            ("main: {level: closed\n", "status.yaml:2:1: invalid YAML: expected ',' or '}'"),
            ("main:\n  level: 'closed\n", "status.yaml:3:1: invalid YAML"),
        ],
    )
    def test_reported(self, text: str, expected: str) -> None:
        found = problems(text)
        assert len(found) == 1, found
        assert found[0].startswith(expected), found[0]

    def test_keys_not_indented(self) -> None:
        assert problems("main:\nlevel: closed\n") == [
            "status.yaml:1: main: has nothing under it; indent its keys below it, such as `level: closed`",
            "status.yaml:2: level: unknown site 'level'; known sites: main, annexe",
        ]

    def test_every_problem_at_once(self) -> None:
        text = "mian:\n  level: closed\nmain:\n  level: clossed\n  message: 42\nannexe:\n  from: soon\n"
        assert [p.split(": ")[0:2] for p in problems(text)] == [
            ["status.yaml:1", "mian"],
            ["status.yaml:4", "main.level"],
            ["status.yaml:5", "main.message"],
            ["status.yaml:7", "annexe.from"],
        ]

    def test_a_bad_service_spares_nothing_else(self) -> None:
        """A problem anywhere rejects the whole file: half a status is never applied."""
        found = problems("main:\n  level: closed\n  message: Fermé\n  services:\n    wifi: {level: bad}\n")
        assert found == [
            "status.yaml:5: main.services.wifi.level: unknown level 'bad'; use one of open, limited, closed, emergency"
        ]


class TestTheFileItself:
    """A missing file, a directory and unreadable bytes are reported, not raised as OSError."""

    def test_missing(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="file not found"):
            status_file.read(tmp_path / "status.yaml", CONFIG)

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="is a directory"):
            status_file.read(tmp_path, CONFIG)

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "status.yaml"
        path.write_bytes(b"main:\n  message: Ferm\xe9\n")
        with pytest.raises(ConfigError, match="cannot be read"):
            status_file.read(path, CONFIG)

    def test_problems_name_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "status.yaml"
        path.write_text("main:\n  level: clossed\n", encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            status_file.read(path, CONFIG)
        assert caught.value.problems[0].file == str(path)
        assert caught.value.problems[0].line == 2


# --- properties -----------------------------------------------------------------------------

KEYS = st.sampled_from([*status_file.SITE_KEYS, "levle", "untill", "Level", "main", "wifi", "fr", "x"])
SCALARS = st.one_of(
    st.sampled_from([*LEVELS, "Closed", "clossed", "", "2026-11-26 10:00", "2026-11-26T10:00:00+01:00",
                     "2026-13-45 99:99", "0001-01-01 00:00", "9999-12-31 23:59", "10:00", "fr", "de"]),
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
    st.datetimes(), st.dates(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.one_of(KEYS, st.sampled_from(["en", "sv", "de"])), inner, max_size=4)),
    max_leaves=12,
)
ENTRIES = st.dictionaries(KEYS, VALUES, max_size=6)
SITES = st.dictionaries(st.sampled_from(["main", "annexe", "mian", "wifi"]), st.one_of(ENTRIES, VALUES), max_size=3)
NASTY = st.text(alphabet=st.sampled_from([*list("main:level closed\n\t -{}[]#'\"&*!|>%@`,?0123456789"), "é", "\x00", "\ufeff"]), max_size=80)


def dump(document: object) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(document, out)
    return out.getvalue()


def parse_or_reject(text: str) -> None:
    try:
        wanted = status_file.parse(text, "status.yaml", CONFIG)
    except ConfigError as err:
        assert err.problems and all(p.file == "status.yaml" and p.text for p in err.problems)
        return
    for target, entry in wanted.items():
        assert target.site in CONFIG.sites
        assert isinstance(entry.level, Level)
        assert all(lang in CONFIG.languages for lang in entry.message)


class TestNeverCrashes:
    """Whatever text or document it is given, parse answers Wanted or ConfigError, nothing else."""

    @given(st.text(max_size=200))
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    def test_random_text(self, text: str) -> None:
        parse_or_reject(text)

    @given(NASTY)
    @settings(max_examples=300)
    def test_yaml_looking_text(self, text: str) -> None:
        parse_or_reject(text)

    @given(SITES)
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    def test_random_documents(self, document: dict[str, object]) -> None:
        parse_or_reject(dump(document))


def _exists(moment: datetime) -> bool:
    """Not in a DST gap of the sites' zone: such times are refused."""
    return moment.replace(tzinfo=PARIS).astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) == moment


VALID_TIMES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2998, 12, 31)).map(
    lambda moment: moment.replace(second=0, microsecond=0)
).filter(_exists)
TEXTS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(str.strip)


@st.composite
def valid_entries(draw: st.DrawFn) -> dict[str, object]:
    entry: dict[str, object] = {"level": draw(st.sampled_from(LEVELS))}
    languages = draw(st.lists(st.sampled_from(CONFIG.languages), unique=True, max_size=3))
    if languages:
        entry["message"] = {lang: draw(TEXTS) for lang in languages}
    if draw(st.booleans()):
        start, end = sorted(draw(st.lists(VALID_TIMES, min_size=2, max_size=2, unique=True)))
        entry["from"], entry["until"] = start.strftime("%Y-%m-%d %H:%M"), end.strftime("%Y-%m-%d %H:%M")
    return entry


class TestValidDocuments:
    """Any well-formed document is read exactly as written."""

    @given(valid_entries(), st.one_of(st.none(), valid_entries()))
    @settings(max_examples=200)
    def test_read_back(self, site: dict[str, object], wifi: dict[str, object] | None) -> None:
        document = {"main": dict(site, **({"services": {"wifi": wifi}} if wifi else {}))}
        wanted = status_file.parse(dump(document), "status.yaml", CONFIG)
        for target, written in [(Target("main"), site), (Target("main", "wifi"), wifi)]:
            if written is None:
                assert target not in wanted
                continue
            entry = wanted[target]
            assert entry.level.value == written["level"]
            assert dict(entry.message) == written.get("message", {})
            for key, value in [("from", entry.starts), ("until", entry.until)]:
                assert (value and status_file.show(value)) == written.get(key)


class TestHelpers:
    """The helpers the desk command shares with the file reader."""

    @pytest.mark.parametrize(
        ("moment", "text"),
        [(paris(2026, 11, 26, 10, 0), "2026-11-26 10:00"), (paris(2026, 11, 26, 10, 0, 5), "2026-11-26 10:00:05")],
    )
    def test_show(self, moment: datetime, text: str) -> None:
        assert status_file.show(moment) == text

    @pytest.mark.parametrize(("word", "near"), [("mian", "main"), ("anexe", "annexe"), ("zzz", None)])
    def test_suggest(self, word: str, near: str | None) -> None:
        assert status_file.suggest(word, ["main", "annexe"]) == near

