"""`statusd set` arguments → a checked entry, or one clear sentence and nothing changed."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd import loading
from statusd.errors import UserError
from statusd.model import LEVELS, Level, StatusEntry, Target
from statusd.sources.status import edit as status_edit
from statusd.sources.status import file as status_file
from statusd.sources.status.entry import build, notes

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "status"
CONFIG = loading.load(DATA / "statusd.yaml")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 20, 30, tzinfo=UTC)  # 21:30 in Paris


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def run(
    target: str = "main",
    level: str = "closed",
    messages: tuple[str, ...] = ("fr:Fermé",),
    starts: str | None = None,
    until: str | None = None,
) -> tuple[Target, StatusEntry]:
    return build(CONFIG, target, level, messages, starts, until, "alice", NOW)


class TestAccepts:
    """What desk staff type becomes the entry they meant."""

    def test_a_closure(self) -> None:
        assert run(messages=("fr:Fermé : incendie", "en:Closed after a fire")) == (
            Target("main"),
            StatusEntry(Level.CLOSED, {"fr": "Fermé : incendie", "en": "Closed after a fire"}, by="alice", at=NOW),
        )

    @pytest.mark.parametrize(
        ("kwargs", "field", "expected"),
        [
            ({"messages": ("Fermé : incendie",)}, "message", {"fr": "Fermé : incendie"}),
            ({"messages": ("Note: closed",)}, "message", {"fr": "Note: closed"}),
            ({"messages": ("bar: closed tonight",)}, "message", {"fr": "bar: closed tonight"}),
            ({"messages": ("de:Geschlossen",)}, "message", {"fr": "de:Geschlossen"}),
            ({"messages": ("  sv: Stängt  ",)}, "message", {"sv": "Stängt"}),
            ({"messages": ("Ouvert à 10:00",)}, "message", {"fr": "Ouvert à 10:00"}),
            ({"level": "Closed"}, "level", Level.CLOSED),
            ({"level": " emergency "}, "level", Level.EMERGENCY),
            ({"level": "open", "messages": ()}, "message", {}),
            ({"level": "limited", "messages": ()}, "level", Level.LIMITED),
            ({"until": "2026-11-26 10:00"}, "until", paris(2026, 11, 26, 10, 0)),
            ({"until": "2026-11-26T10:00"}, "until", paris(2026, 11, 26, 10, 0)),
            ({"until": "2026-11-26 10:00:30"}, "until", paris(2026, 11, 26, 10, 0, 30)),
            ({"until": "2026-11-26T09:00:00+00:00"}, "until", paris(2026, 11, 26, 10, 0)),
            ({"until": "23:00"}, "until", paris(2026, 11, 24, 23, 0)),  # later today
            ({"until": "10:00"}, "until", paris(2026, 11, 25, 10, 0)),  # already past: tomorrow
            ({"until": "9:05"}, "until", paris(2026, 11, 25, 9, 5)),
            ({"until": "21:30"}, "until", paris(2026, 11, 25, 21, 30)),  # now is not the future
            ({"starts": "2026-12-24 18:00"}, "starts", paris(2026, 12, 24, 18, 0)),  # open-ended
            ({"starts": "2026-12-24 18:00", "until": "2026-12-27 10:00"}, "until", paris(2026, 12, 27, 10, 0)),
            ({"starts": "22:00", "until": "02:00"}, "starts", paris(2026, 11, 24, 22, 0)),
            ({"starts": "22:00", "until": "02:00"}, "until", paris(2026, 11, 25, 2, 0)),
            ({"level": "limited", "messages": (), "starts": "08:00"}, "starts", paris(2026, 11, 25, 8, 0)),
            ({"messages": ("fr:Ligne 1\nLigne 2",)}, "message", {"fr": "Ligne 1\nLigne 2"}),
        ],
    )
    def test_field(self, kwargs: dict[str, object], field: str, expected: object) -> None:
        _, entry = run(**kwargs)  # type: ignore[arg-type]
        assert getattr(entry, field) == expected
        if isinstance(expected, datetime):
            assert getattr(entry, field).tzinfo == PARIS

    @pytest.mark.parametrize(("text", "target"), [("main/wifi", Target("main", "wifi")), (" annexe ", Target("annexe"))])
    def test_targets(self, text: str, target: Target) -> None:
        assert run(target=text)[0] == target

    def test_an_ambiguous_time_takes_the_first_and_says_so(self) -> None:
        target, entry = run(starts="2027-10-31 02:30", until="2027-11-01 10:00")
        assert entry.starts is not None and entry.starts.utcoffset() == timedelta(hours=2)
        (note,) = notes(CONFIG, target, entry)
        assert note.startswith("--from 2027-10-31 02:30 happens twice at main (Europe/Paris, the clocks go back); "
                               "the first one was taken (CEST, UTC+0200)")
        assert "2027-10-31 02:30+01:00" in note

    def test_stamps(self) -> None:
        _, entry = build(CONFIG, "main", "open", (), None, None, "bob", NOW)
        assert (entry.by, entry.at) == ("bob", NOW)


class TestRefuses:
    """Every mistake is refused with one sentence that says what to type instead."""

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({"target": "mian"}, "unknown site 'mian' (did you mean 'main'?); the known sites are main, annexe"),
            ({"target": "bibliotheque"}, "unknown site 'bibliotheque'; the known sites are main, annexe"),
            ({"target": ""}, "unknown site ''; the known sites are main, annexe"),
            ({"target": "main/wfi"}, "unknown service 'wfi' of main (did you mean 'wifi'?); its services are wifi, printing"),
            ({"target": "main/wifi/x"}, "'main/wifi/x' is not a target; write a site (main) or a service of it (main/wifi)"),
            ({"target": "main/"}, "'main/' is not a target; write a site (main) or a service of it (main/wifi)"),
            ({"target": "/wifi"}, "'/wifi' is not a target"),
            ({"target": "annexe/wifi"}, "site annexe has no services; set the site itself with `annexe`"),
            ({"level": "clossed"}, "unknown level 'clossed' (did you mean 'closed'?); use one of open, limited, closed, emergency"),
            ({"level": "shut"}, "unknown level 'shut'; use one of open, limited, closed, emergency"),
            ({"messages": ("fr:",)}, "the message 'fr:' is empty; write what the public should read"),
            ({"messages": ("   ",)}, "the message '   ' is empty"),
            ({"messages": ("fr:Fermé", "Fermé aussi")}, "two messages in 'fr'; give one -m per language"),
            ({"messages": ("en:a", "en:b")}, "two messages in 'en'"),
            ({"messages": ("fr:Fer\x1bmé",)}, "the message holds an invisible control character (U+001B at position 4)"),
            ({"messages": ("fr:Ferm\x85é",)}, "the message holds an invisible control character (U+0085"),
            ({"messages": ("fr:Fermé\rBEGIN:VEVENT",)}, "the message holds an invisible control character (U+000D"),
            ({"messages": ("fr:Ferm\udce9",)}, "the message holds half of a character (U+DCE9"),
            ({"messages": ("fr:" + "x" * 2001,)}, "the fr message is 2,001 characters long; keep a message under 2,000"),
            ({"target": "ma\x1bin"}, "the target holds an invisible control character"),
            ({"starts": "2027-03-28 02:30", "until": "2027-03-29 10:00"}, '--from \'2027-03-28 02:30\' 2027-03-28 02:30 does not exist in Europe/Paris (the clocks skip it); the nearest valid times are "2027-03-28 01:59" and "2027-03-28 03:00"'),
            ({"messages": ()}, 'a closed status needs a message saying why, e.g. -m "fr:…"'),
            ({"level": "emergency", "messages": ()}, "an emergency status needs a message"),
            ({"until": "tomorrow"}, "--until 'tomorrow' is not a time I can read; write \"YYYY-MM-DD HH:MM\" (or HH:MM for today) in the site's time (Europe/Paris)"),
            ({"until": "26/11/2026 10:00"}, "--until '26/11/2026 10:00' is not a time I can read"),
            ({"until": "25:00"}, "--until '25:00' is not a time of day; write HH:MM between 00:00 and 23:59"),
            ({"until": "0001-01-01 00:00"}, "--until '0001-01-01 00:00' year 1 is out of range"),
            ({"starts": "soon"}, "--from 'soon' is not a time I can read"),
            ({"until": "2026-11-24 21:00"}, "--until 2026-11-24 21:00 is already past (it is 2026-11-24 21:30 at main, Europe/Paris)"),
            ({"until": "2026-11-24 21:30"}, "--until 2026-11-24 21:30 is already past"),
            ({"starts": "2026-12-27 10:00", "until": "2026-12-24 18:00"}, "--from 2026-12-27 10:00 should be before --until 2026-12-24 18:00"),
            ({"starts": "2026-12-24 18:00", "until": "2026-12-24 18:00"}, "--from 2026-12-24 18:00 should be before"),
            ({"level": "open", "messages": (), "starts": "2026-12-24 18:00"}, "--from plans a change ahead; it only goes with limited, closed or emergency"),
        ],
    )
    def test_refused(self, kwargs: dict[str, object], expected: str) -> None:
        with pytest.raises(UserError) as caught:
            run(**kwargs)  # type: ignore[arg-type]
        assert str(caught.value).startswith(expected), str(caught.value)
        assert "\n" not in str(caught.value)


ARGS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["main", "annexe", "main/wifi", "main/printing", "mian", "main/", "/"]),
)
LEVEL_ARGS = st.one_of(st.text(max_size=12), st.sampled_from([*LEVELS, "Closed", "CLOSED"]))
MESSAGE_ARGS = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.builds(lambda lang, text: f"{lang}:{text}", st.sampled_from(["fr", "en", "sv", "de", "x"]), st.text(max_size=20)),
        st.text(st.characters(categories=["Cs", "Cc", "Zl", "Zp", "L"]), max_size=8),
    ),
    max_size=4,
)
TIME_ARGS = st.one_of(
    st.none(),
    st.text(max_size=25),
    st.sampled_from(["00:00", "23:59", "24:00", "9:5", "1970-01-01 00:00", "2999-12-31 23:59", "9999-12-31 23:59",
                     "2026-02-30 10:00", "2026-W48-2", "2026-11-26T10:00:00+14:00", "2026-11-26 10:00:00.5"]),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat(" ")),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
NOWS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))

USERS = st.one_of(
    st.sampled_from(["", " ", "alice", " bob ", "jean-luc.d", "ölle"]),
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=10),
)

class TestNeverCrashes:
    """For any arguments at all, build returns an entry the file accepts or raises UserError."""

    @given(ARGS, LEVEL_ARGS, MESSAGE_ARGS, TIME_ARGS, TIME_ARGS, st.one_of(USERS, st.text(max_size=10)), NOWS)
    @settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
    def test_entry_or_user_error(self, target: str, level: str, messages: list[str], starts: str | None,
                                 until: str | None, user: str, now: datetime) -> None:
        try:
            built, entry = build(CONFIG, target, level, messages, starts, until, user, now)
        except UserError as err:
            assert str(err) and "\n" not in str(err)
            return
        assert built.site in CONFIG.sites
        assert entry.level in Level
        assert entry.until is None or entry.until > now
        assert entry.starts is None or entry.until is None or entry.starts < entry.until
        assert entry.level not in (Level.CLOSED, Level.EMERGENCY) or entry.message


VALID_TARGETS = st.sampled_from(["main", "annexe", "main/wifi", "main/printing"])
MESSAGE_TEXT = st.text(
    st.characters(exclude_categories=["Cs", "Cc"], include_characters="\n\t"), min_size=1, max_size=30
).filter(str.strip)
VALID_MESSAGES = st.dictionaries(st.sampled_from(["fr", "en", "sv"]), MESSAGE_TEXT, min_size=1, max_size=3).flatmap(
    lambda texts: st.permutations(
        [f"{lang}:{text}" if lang != "fr" or ":" in text else text for lang, text in texts.items()]
    )
)
VALID_TIMES = st.one_of(
    st.none(),
    st.sampled_from(["23:59", "00:00", "12:00"]),
    st.datetimes(min_value=datetime(2026, 11, 25), max_value=datetime(2999, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
)


class TestWhatIsBuiltIsWritten:
    """Every entry build accepts is written by status_edit and read back unchanged."""

    @given(VALID_TARGETS, st.sampled_from(LEVELS), VALID_MESSAGES, VALID_TIMES, VALID_TIMES,
           USERS)
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def test_round_trip(self, target: str, level: str, messages: list[str], starts: str | None,
                        until: str | None, user: str) -> None:
        try:
            built, entry = build(CONFIG, target, level, messages, starts, until, user, NOW)
        except UserError:
            return
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "status.yaml"
            status_edit.set_entry(path, CONFIG, built, entry)
            read = status_file.read(path, CONFIG)[built]
        assert read == StatusEntry(entry.level, entry.message, entry.starts, entry.until,
                                   entry.by, NOW)
