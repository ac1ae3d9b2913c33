"""The Atom feed, the closures calendar and the CAP 1.2 alerts."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from statusd.model import Target
from statusd.web import cap, ics
from tests.web.test_web_support import FLOOD, NOW, Served, announced, entry, event, later
from tests.web.test_web_support import served as served_fixture

pytestmark = pytest.mark.e2e

served = served_fixture

ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
XSD = etree.XMLSchema(etree.parse(str(Path(__file__).parent.parent / "data/cap/CAP-v1.2.xsd")))


async def get(served: Served, path: str) -> tuple[bytes, str]:
    async with served.session.get(f"{served.url}{path}") as response:
        assert response.status == 200, path
        return await response.read(), response.headers["Content-Type"]


class TestAtom:
    """The feed is Atom 1.0 with stable tag: ids, one feed per language."""

    async def test_valid_feed(self, served: Served) -> None:
        history = [event("main", "closed", "open", later(2), FLOOD), event("annexe", "limited", "open", later(1))]
        served.state.update({Target("main"): entry("closed", FLOOD)}, {}, history, later(3))
        body, kind = await get(served, "/feed.atom?lang=sv")
        assert kind.startswith("application/atom+xml")
        feed = etree.fromstring(body)
        assert feed.tag == f"{ATOM}feed"
        for name in ("id", "title", "updated", "author"):
            assert feed.find(f"{ATOM}{name}") is not None, name
        entries = feed.findall(f"{ATOM}entry")
        assert len(entries) == 2
        ids = [e.findtext(f"{ATOM}id") for e in entries]
        assert all(re.match(r"^tag:127\.0\.0\.1,2024:statusd/update/[0-9a-f]{20}/sv$", i) for i in ids)
        assert entries[0].findtext(f"{ATOM}title") == "Centralbiblioteket: Stängt"
        assert entries[0].findtext(f"{ATOM}content") == FLOOD["sv"]
        assert feed.findtext(f"{ATOM}updated") == later(2).isoformat()
        again, _ = await get(served, "/feed.atom?lang=sv")
        assert again == body


def unfold(body: bytes) -> list[str]:
    return body.decode().replace("\r\n ", "").split("\r\n")


class TestCalendar:
    """closures.ics is RFC 5545: CRLF, lines folded at 75 octets, a VEVENT per closure."""

    async def test_current_and_planned(self, served: Served) -> None:
        long_text = {"fr": "Fermeture exceptionnelle : dégât des eaux au rez-de-chaussée, " * 3}
        wanted = {Target("main"): entry("closed", long_text, until=later(600)),
                  Target("annexe"): entry("closed", {"fr": "Travaux"}, starts=later(60 * 24), until=later(60 * 48))}
        served.state.update(wanted, announced("main", "closed", later(1)), [], later(2))
        body, kind = await get(served, "/closures.ics?lang=fr")
        assert kind.startswith("text/calendar")
        assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
        assert all(len(line) <= 75 for line in body.split(b"\r\n"))
        lines = unfold(body)
        assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR"
        assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 2
        for prop in ("UID:", "DTSTAMP:", "DTSTART:", "DTEND:", "SUMMARY:"):
            assert sum(line.startswith(prop) for line in lines) == 2, prop
        assert "DTSTART:20250312T093100Z" in lines and "DTEND:20250312T193000Z" in lines
        assert "SUMMARY:Annexe: Fermé" in lines
        assert any(line.startswith("DESCRIPTION:Fermeture exceptionnelle : dégât des eaux au rez-de-chaussée\\, ")
                   for line in lines)

    @pytest.mark.parametrize("text", ["a" * 200, "é" * 100, "€" * 80, "a" + "😀" * 40])
    def test_fold_never_splits_a_character(self, text: str) -> None:
        folded = ics.fold("DESCRIPTION:" + text).encode()
        assert all(len(line) <= 75 for line in folded.split(b"\r\n"))
        assert folded.decode().replace("\r\n ", "") == "DESCRIPTION:" + text

    def test_escape(self) -> None:
        assert ics.escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def alerts(body: bytes) -> list[etree._Element]:
    feed = etree.fromstring(body)
    found: list[etree._Element] = feed.findall(f"{ATOM}entry/{ATOM}content/{CAP}alert")
    return found


def fields(alert: etree._Element) -> dict[str, str]:
    return {child.tag.removeprefix(CAP): child.text for child in alert if child.text and child.text.strip()}


class TestCap:
    """cap.xml carries CAP 1.2 alerts that validate; updates and reopenings reference the first."""

    async def test_alert_update_cancel(self, served: Served) -> None:
        closed = event("main", "closed", "open", later(1), FLOOD)
        served.state.update({Target("main"): entry("closed", FLOOD)}, {}, [closed], later(1))
        first = await self._only(served, "Alert")
        assert "references" not in fields(first)
        info = first.findall(f"{CAP}info")
        assert [i.findtext(f"{CAP}language") for i in info] == ["fr", "en", "sv"]
        assert info[1].findtext(f"{CAP}area/{CAP}areaDesc") == "Central Library"
        assert info[1].findtext(f"{CAP}description") == FLOOD["en"]

        worse = event("main", "emergency", "closed", later(5), {"en": "Evacuate"})
        served.state.update({Target("main"): entry("emergency", {"en": "Evacuate"})}, {}, [worse, closed], later(5))
        update = await self._only(served, "Update")
        assert update.findtext(f"{CAP}info/{CAP}severity") == "Severe"
        reference = f"{fields(first)['sender']},{fields(first)['identifier']},{fields(first)['sent']}"
        assert fields(update)["references"] == reference

        reopened = event("main", "open", "emergency", later(30))
        served.state.update({}, {}, [reopened, worse, closed], later(30))
        cancel = await self._only(served, "Cancel")
        refs = fields(cancel)["references"].split()
        assert refs[0] == reference and len(refs) == 2
        assert fields(cancel)["incidents"] == fields(first)["identifier"]

        standalone, kind = await get(served, f"/cap/{fields(cancel)['identifier']}.xml")
        assert kind.startswith("application/cap+xml")
        XSD.assertValid(etree.fromstring(standalone))

        served.state.update({}, {}, [reopened, worse, closed], later(30) + cap.CANCEL_KEEP)
        body, _ = await get(served, "/cap.xml")
        assert alerts(body) == []

    async def test_no_closure_no_alert(self, served: Served) -> None:
        served.state.update({Target("main", "wifi"): entry("closed")}, {},
                            [event("main/wifi", "closed", "open", NOW), event("annexe", "limited", "open", NOW)], NOW)
        body, _ = await get(served, "/cap.xml")
        assert alerts(body) == []

    def test_xsd_rejects_a_broken_alert(self) -> None:
        broken = etree.fromstring(
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>')
        assert not XSD.validate(broken)

    async def _only(self, served: Served, msg_type: str) -> etree._Element:
        body, _ = await get(served, "/cap.xml")
        (alert,) = alerts(body)
        XSD.assertValid(etree.ElementTree(alert))
        assert fields(alert)["msgType"] == msg_type
        assert (fields(alert)["status"], fields(alert)["scope"]) == ("Actual", "Public")
        return alert


def test_sent_has_an_offset_not_z() -> None:
    from statusd.config.types import Site
    site = Site("main", {"en": "M"}, "UTC", "https://x.test/", {}, {}, {})
    assert cap.stamp(NOW + timedelta(microseconds=5), site) == "2025-03-12T09:30:00+00:00"
