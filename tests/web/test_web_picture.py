"""The picture kept site by site is the picture made afresh, whatever the history of changes.

web.picture keeps each site's cleaned entry and its JSON while what it is made from
stays the same (issue 15: a change touched one site and all 500 were built,
cleaned and encoded again). Over any history of entries (any text: controls, lone
surrogates), announcements, live figures (1, 1.0 and True are equal in Python and not
in JSON), times written with other offsets, and a `now` that crosses planned
starts and ends, status.json and the facts are byte for byte those of cleaning and
encoding `snapshot.snapshot`, and the page's JSON-LD is that of `jsonld.graph`.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.config.load import Config
from statusd.events import Event, EventKind
from statusd.model import Announced, Level, StatusEntry, Target
from statusd.safetext import clean_tree
from statusd.web import jsonld
from statusd.web.picture import Picture, dumps
from statusd.web.snapshot import snapshot
from tests.web.test_web_support import NOW

pytestmark = pytest.mark.unit

PLUS_ONE = timezone(timedelta(hours=1))
# The same instants written with two offsets: equal datetimes, different text in status.json.
TIMES = st.sampled_from([None, NOW + timedelta(hours=1), (NOW + timedelta(hours=1)).astimezone(PLUS_ONE),
                         NOW + timedelta(hours=3), NOW - timedelta(hours=1)])
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
FIGURES = st.sampled_from([None, 0, 1, 1.0, True, 2.5, float("nan")])


@st.composite
def moment(draw: st.DrawFn, config: Config) -> dict[str, Any]:
    """One call's inputs: entries, what was announced, live figures, recent events and the time."""
    targets = [Target(site.id) for site in config.sites.values()] + [
        Target(site.id, service) for site in config.sites.values() for service in site.services]
    wanted = {}
    for target in draw(st.lists(st.sampled_from(targets), unique=True)):
        text = draw(st.one_of(st.none(), ANY_TEXT, st.sampled_from(["Fermé", "Ouvert"])))
        wanted[target] = StatusEntry(level=draw(st.sampled_from(list(Level))),
                                     message={"fr": text} if text is not None else {},
                                     starts=draw(TIMES), until=draw(TIMES), by=draw(st.sampled_from([None, "ana"])))
    announced = {
        str(target): Announced(draw(st.sampled_from(["open", "closed"])), draw(st.sampled_from(["a", "b"])),
                               since=draw(st.sampled_from([0.0, 1.74e9, 1.74e9 + 0.5])))
        for target in draw(st.lists(st.sampled_from(targets), unique=True, max_size=4))
    }
    live = {
        site.id: {"zones": {"floor2": {"free": draw(FIGURES), "band": draw(st.sampled_from(["ok", "full"]))}},
                  "queues": {}, "total": draw(st.sampled_from([None, {"free": 1}, {"free": 1.0}]))}
        for site in config.sites.values() if draw(st.booleans())
    }
    recent = [Event(EventKind.STATUS_CHANGED, target, Level.CLOSED, Level.OPEN, {"fr": draw(ANY_TEXT)},
                    NOW, "ana", f"r{n}") for n, target in enumerate(draw(st.lists(st.sampled_from(targets), max_size=2)))]
    now = NOW + timedelta(minutes=draw(st.sampled_from([-90, 0, 59, 60, 61, 179, 180, 240])))
    return {"wanted": wanted, "announced": announced, "live": live or None, "recent": recent, "now": now}


def _fresh(config: Config, call: dict[str, Any]) -> Any:
    return clean_tree(snapshot(config, call["wanted"], call["announced"], call["now"], call["recent"], call["live"]))


class TestThePictureKept:
    def test_any_history_gives_the_fresh_bytes(self, config: Config) -> None:
        picture = Picture()

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(history=st.lists(moment(config), min_size=1, max_size=6))
        def check(history: list[dict[str, Any]]) -> None:
            for call in history:
                made = picture.make(config, call["wanted"], call["announced"], call["now"], call["recent"], call["live"])
                fresh = _fresh(config, call)
                assert made.body == dumps(fresh)
                assert made.facts == dumps({k: v for k, v in fresh.items() if k != "generated_at"})
                assert json.loads(made.body) == json.loads(dumps(fresh))
                for lang in config.languages:
                    assert jsonld.script(config, made.snapshot, lang) == jsonld.script_text(
                        jsonld.graph(config, made.snapshot, lang))

        check()

    def test_an_unchanged_site_is_not_made_again(self, config: Config) -> None:
        """The point of it: a change to one site builds that site alone, and the other is the very entry kept."""
        picture = Picture()
        first = picture.make(config, {}, {}, NOW)
        second = picture.make(config, {Target("main"): StatusEntry(level=Level.CLOSED)}, {}, NOW + timedelta(seconds=1))
        assert second.snapshot["sites"]["annexe"] is first.snapshot["sites"]["annexe"]
        assert second.snapshot["sites"]["main"]["level"] == "closed"
        assert first.snapshot["sites"]["main"]["level"] == "open"

    def test_a_planned_start_passing_makes_the_site_again(self, config: Config) -> None:
        """Nothing changed but the time: the site's level changes when its planned window opens."""
        picture = Picture()
        start = NOW + timedelta(hours=1)
        wanted = {Target("main"): StatusEntry(level=Level.CLOSED, starts=start, until=start + timedelta(hours=1))}
        before = picture.make(config, wanted, {}, start - timedelta(seconds=1)).snapshot["sites"]["main"]
        during = picture.make(config, wanted, {}, start).snapshot["sites"]["main"]
        after = picture.make(config, wanted, {}, start + timedelta(hours=1)).snapshot["sites"]["main"]
        assert (before["level"], during["level"], after["level"]) == ("open", "closed", "open")
        assert before["planned"] and not during["planned"]

    def test_a_reloaded_config_is_made_afresh(self, config: Config) -> None:
        """A config read again is a new object: its sites are built from it, not kept from the old one."""
        picture = Picture()
        picture.make(config, {}, {}, NOW)
        renamed = config.sites["main"].__class__(**{**vars(config.sites["main"]), "name": {"fr": "Autre nom"}})
        other = config.__class__(**{**vars(config), "sites": {**config.sites, "main": renamed}})
        assert picture.make(other, {}, {}, NOW).snapshot["sites"]["main"]["name"] == {"fr": "Autre nom"}


def test_times_written_with_another_offset_are_shown_as_written(config: Config) -> None:
    """Not vacuous: the two texts of one instant are told apart, as status.json shows them."""
    picture = Picture()
    utc = NOW + timedelta(hours=1)
    for until in (utc, utc.astimezone(PLUS_ONE), utc):
        made = picture.make(config, {Target("main"): StatusEntry(level=Level.CLOSED, until=until)}, {}, NOW)
        assert made.snapshot["sites"]["main"]["until"] == until.isoformat()


def test_figures_equal_in_python_are_told_apart(config: Config) -> None:
    picture = Picture()
    for free in (1, 1.0, True, 1):
        live = {"main": {"zones": {}, "queues": {}, "total": {"free": free}}}
        made = picture.make(config, {}, {}, NOW, (), live)
        assert f'"total":{{"free":{json.dumps(free)}}}' in made.body.decode()
