"""The status page keeps each unchanged site's section between renders, and is the same page for it.

page.Sections keeps a site's rendered section while its status, the config and the
words stay the same (issue 15: a change re-rendered all 500 sites). Whatever
history of changes, a page made with the kept sections is byte for byte the page
made afresh, live and exported, with the "Notify me" form and without.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd import loading
from statusd.config.load import Config
from statusd.model import Level, StatusEntry, Target
from statusd.web import page
from statusd.web.snapshot import snapshot
from tests.conftest import WriteConfig
from tests.push.conftest import push_channels
from tests.web.test_web_support import NOW

pytestmark = pytest.mark.unit

LIVE, EXPORT = page.Links("https://library.example"), page.Links("https://library.example", export=True)
TEXTS = st.one_of(st.none(), st.sampled_from(["Fermé", "Fermé <b>&amp;</b> \"vite\"", "Ouvert", "Dégât des eaux"]))


@st.composite
def changes(draw: st.DrawFn, config: Config) -> dict[Target, StatusEntry]:
    """A status.yaml's worth of entries: any site or service at any level, with or without a text or times."""
    targets = [Target(site.id) for site in config.sites.values()] + [
        Target(site.id, service) for site in config.sites.values() for service in site.services]
    wanted = {}
    for target in draw(st.lists(st.sampled_from(targets), unique=True)):
        text = draw(TEXTS)
        until = draw(st.sampled_from([None, NOW + timedelta(hours=2)]))
        starts = draw(st.sampled_from([None, NOW + timedelta(days=1)]))
        wanted[target] = StatusEntry(level=draw(st.sampled_from(list(Level))),
                                     message={"fr": text} if text else {}, starts=starts,
                                     until=until if starts is None or until is None else starts + timedelta(hours=3))
    return wanted


def _snap(config: Config, wanted: dict[Target, StatusEntry], minutes: int) -> dict[str, Any]:
    return snapshot(config, wanted, {}, NOW + timedelta(minutes=minutes), [], {})


@pytest.fixture(params=["console", "webpush"])
def configured(request: pytest.FixtureRequest, write_config: WriteConfig, tmp_path: Path) -> Config:
    if request.param == "console":
        return loading.load(write_config())
    from statusd.channels.webpush_keys import generate

    key = tmp_path / "vapid.pem"
    key.write_text(generate()[0], encoding="ascii")
    key.chmod(0o600)
    return loading.load(write_config(channels=push_channels(key)))


class TestTheSamePage:
    def test_any_history_of_changes(self, configured: Config) -> None:
        kept_live, kept_export = page.Sections(), page.Sections()

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(history=st.lists(changes(configured), min_size=1, max_size=6))
        def check(history: list[dict[Target, StatusEntry]]) -> None:
            for minutes, wanted in enumerate(history):
                snap = _snap(configured, wanted, minutes)
                for lang in configured.languages:
                    assert page.render(configured, snap, lang, LIVE, kept_live) == page.render(configured, snap, lang, LIVE)
                    assert (page.render(configured, snap, lang, EXPORT, kept_export)
                            == page.render(configured, snap, lang, EXPORT))

        check()

    def test_the_form_is_there_when_a_webpush_channel_is(self, configured: Config) -> None:
        """Not vacuous: the webpush config's page has the form, the console one's has not."""
        html = page.render(configured, _snap(configured, {}, 0), "fr", LIVE, page.Sections())
        has_push = any(c.type == "webpush" for c in configured.channels.values())
        assert (b"data-follow-site" in html) == has_push

    def test_a_reloaded_config_is_rendered_afresh(self, write_config: WriteConfig) -> None:
        """A config read again is a new object: nothing kept from the old one's sites, not even what
        the snapshot does not carry and so cannot tell apart (a zone's name)."""
        kept = page.Sections()
        first = loading.load(write_config())
        page.render(first, _snap(first, {}, 0), "fr", LIVE, kept)
        path = first.path
        path.write_text(path.read_text(encoding="utf-8").replace("2e étage", "Deuxième étage"), encoding="utf-8")
        second = loading.load(path)
        assert second.sites["main"].zones["floor2"].name["fr"] == "Deuxième étage"
        assert _snap(first, {}, 0)["sites"] == _snap(second, {}, 0)["sites"]
        html = page.render(second, _snap(second, {}, 0), "fr", LIVE, kept)
        assert "Deuxième étage".encode() in html and html == page.render(second, _snap(second, {}, 0), "fr", LIVE)

    def test_an_unchanged_site_is_not_rendered_again(self, configured: Config,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """The point of it: a change to one site renders that site's section alone."""
        kept = page.Sections()
        page.render(configured, _snap(configured, {}, 0), "fr", LIVE, kept)
        made: list[str] = []
        original = page._site

        def counted(config: Config, site: Any, *args: Any) -> dict[str, Any]:
            made.append(site.id)
            return original(config, site, *args)

        monkeypatch.setattr(page, "_site", counted)
        page.render(configured, _snap(configured, {Target("main"): StatusEntry(level=Level.CLOSED)}, 1), "fr",
                    LIVE, kept)
        assert made == ["main"]
