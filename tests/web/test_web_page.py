"""The status page: complete without JavaScript, per language, with schema.org JSON-LD."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from statusd.config.load import Config
from statusd.config.types import Site
from statusd.model import Target
from statusd.web import jsonld
from statusd.web.words import negotiate
from tests.web.test_web_support import FLOOD, NOW, Served, entry, event, later
from tests.web.test_web_support import served as served_fixture

pytestmark = pytest.mark.e2e

served = served_fixture

PARIS = ZoneInfo("Europe/Paris")


async def page(served: Served, query: str = "", **headers: str) -> tuple[Any, Any]:
    async with served.session.get(f"{served.url}/{query}", headers=headers) as response:
        assert response.status == 200
        return response, lxml.html.fromstring(await response.read())


def ld(tree: Any) -> dict[str, Any]:
    (script,) = tree.xpath('//script[@type="application/ld+json"]')
    found: dict[str, Any] = json.loads(script.text)
    return found


class TestContent:
    """Every site and service is on the page with its level in words, message and times."""

    async def test_every_site_and_service(self, served: Served, config: Config) -> None:
        served.state.update({Target("main"): entry("closed", FLOOD, until=later(120)),
                             Target("main", "printing"): entry("limited", {"fr": "Une imprimante"})},
                            {}, [event("main", "closed", "open", NOW, FLOOD)], later(1))
        _, tree = await page(served, "?lang=fr")
        for site in config.sites.values():
            section = tree.get_element_by_id(f"site-{site.id}")
            assert section.get("data-site") == site.id
            assert site.name["fr"] in section.text_content()
            for service_id, names in site.services.items():
                item = section.get_element_by_id(f"service-{site.id}-{service_id}")
                assert names["fr"] in item.text_content()
        main = tree.get_element_by_id("site-main")
        assert main.xpath('.//*[@data-field="level"]')[0].text == "Fermé"
        assert FLOOD["fr"] in main.xpath('.//*[@data-field="message"]')[0].text
        until = main.xpath('.//*[@data-field="until"]/time')[0]
        assert until.get("datetime") == later(120).isoformat()
        printing = tree.get_element_by_id("service-main-printing")
        assert printing.xpath('.//*[@data-field="level"]')[0].text == "Service réduit"
        assert "Water" not in tree.get_element_by_id("recent-updates").text_content()
        assert FLOOD["fr"] in tree.get_element_by_id("recent-updates").text_content()

    async def test_placeholders_for_seats_and_queues(self, served: Served) -> None:
        _, tree = await page(served, "?lang=en")
        seats = tree.xpath('//*[@data-zone="floor2"]/*[@data-field="seats"]')[0]
        wait = tree.xpath('//*[@data-queue="entrance"]/*[@data-field="wait"]')[0]
        assert seats.text == wait.text == "No live data"

    async def test_structure_and_headers(self, served: Served) -> None:
        response, tree = await page(served, "?lang=sv")
        assert tree.get("lang") == "sv"
        assert tree.xpath("//main") and tree.xpath("//header") and tree.xpath("//footer")
        assert tree.xpath('//a[@class="skip"]')[0].get("href") == "#content"
        assert tree.xpath("//h1")
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "Set-Cookie" not in response.headers
        scripts = tree.xpath("//script")
        assert all(s.get("src") or s.get("type") == "application/ld+json" for s in scripts)
        assert tree.xpath('//script[@src="static/page.js"]')[0].get("defer") is not None
        external = [e for e in tree.xpath("//*[@src or (self::link and @href)]")
                    if (e.get("src") or e.get("href")).startswith(("http:", "https:", "//"))]
        assert external == []


class TestLanguage:
    """?lang= wins, then Accept-Language, then the first configured language."""

    @pytest.mark.parametrize(("query", "accept", "expected"), [
        ("", "", "fr"), ("", "sv-SE,sv;q=0.9,en;q=0.5", "sv"), ("", "de, en;q=0.3", "en"),
        ("?lang=en", "sv", "en"), ("?lang=xx", "sv", "sv"), ("", "de", "fr"),
    ])
    async def test_choice(self, served: Served, query: str, accept: str, expected: str) -> None:
        response, tree = await page(served, query, **({"Accept-Language": accept} if accept else {}))
        assert tree.get("lang") == expected
        assert response.headers["Content-Language"] == expected

    def test_negotiate_quality(self) -> None:
        assert negotiate("en;q=0.2, sv;q=0.8", ["fr", "en", "sv"]) == "sv"


class TestJsonLd:
    """Each site is a schema.org Library with regular and special opening hours."""

    async def test_libraries(self, served: Served, config: Config) -> None:
        served.state.update({Target("main"): entry("closed", FLOOD, until=later(60 * 30))}, {}, [], later(1))
        _, tree = await page(served, "?lang=en")
        data = ld(tree)
        assert data["@context"] == "https://schema.org"
        libraries = {item["name"]: item for item in data["@graph"]}
        assert set(libraries) == {site.name["en"] for site in config.sites.values()}
        assert all(item["@type"] == "Library" and item["url"] for item in libraries.values())
        special = libraries["Central Library"]["specialOpeningHoursSpecification"]
        assert special[0] == {"@type": "OpeningHoursSpecification", "validFrom": "2025-03-12",
                              "validThrough": "2025-03-13", "opens": "00:00", "closes": "00:00"}
        assert "specialOpeningHoursSpecification" not in libraries["Annexe"]

    def test_script_text_cannot_end_the_script(self) -> None:
        assert "</script>" not in jsonld.script_text({"name": "</script><script>alert(1)"})


HOURS = {d: ((time(9), time(20)),) for d in range(5)} | {5: ((time(10), time(13)), (time(14), time(18)))}
SITE = Site("main", {"en": "Main"}, "Europe/Paris", "https://lib.test/", {}, {}, {}, HOURS)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=PARIS)  # 10 March 2025 is a Monday


def spec(first: str, last: str, opens: str, closes: str) -> dict[str, str]:
    return {"@type": "OpeningHoursSpecification", "validFrom": first, "validThrough": last,
            "opens": opens, "closes": closes}


class TestHours:
    """Regular hours are grouped by period; closures keep only the open part of a day."""

    def test_regular(self) -> None:
        regular = jsonld.regular(SITE)
        assert regular[0]["dayOfWeek"] == [f"https://schema.org/{d}" for d in jsonld.DAYS[:5]]
        assert (regular[0]["opens"], regular[0]["closes"]) == ("09:00", "20:00")
        assert [(r["opens"], r["closes"]) for r in regular[1:]] == [("10:00", "13:00"), ("14:00", "18:00")]

    @pytest.mark.parametrize(("start", "end", "expected"), [
        # whole days
        (local(11, 0), local(13, 0), [spec("2025-03-11", "2025-03-12", "00:00", "00:00")]),
        # from mid-afternoon to the next day's noon
        (local(11, 15), local(12, 12), [spec("2025-03-11", "2025-03-11", "09:00", "15:00"),
                                        spec("2025-03-12", "2025-03-12", "12:00", "20:00")]),
        # a lunchtime closure inside one period
        (local(11, 12), local(11, 14), [spec("2025-03-11", "2025-03-11", "09:00", "12:00"),
                                        spec("2025-03-11", "2025-03-11", "14:00", "20:00")]),
        # Saturday afternoon only
        (local(15, 13, 30), local(16, 0), [spec("2025-03-15", "2025-03-15", "10:00", "13:00")]),
        # until further notice: closed through today
        (local(10, 0), None, [spec("2025-03-10", "2025-03-12", "00:00", "00:00")]),
    ])
    def test_closed(self, start: datetime, end: datetime | None, expected: list[dict[str, str]]) -> None:
        assert jsonld.closed(SITE, start, end, NOW) == expected
