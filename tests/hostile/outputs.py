"""Every public document of a WebState, parsed the way its readers parse it; a failure says which."""

from __future__ import annotations

import json

import icalendar
from lxml import etree

from statusd.web.state import WebState


def parse_all(state: WebState) -> dict[str, object]:
    """Each document parsed: XML with lxml, iCalendar with `icalendar`, JSON with json; raises on any."""
    parsed: dict[str, object] = {}
    for name, doc in {**state.docs, **{f"alert {k}": v for k, v in state.alerts.items()}}.items():
        body = doc.body
        body.decode("utf-8")  # every document is UTF-8, whatever it holds
        if name.startswith(("feed.", "cap.", "alert ")):
            parsed[name] = etree.fromstring(body, etree.XMLParser(recover=False, resolve_entities=False))
        elif name.startswith("closures."):
            assert b"\r" not in body.replace(b"\r\n", b""), f"{name}: a bare CR"
            parsed[name] = icalendar.Calendar.from_ical(body)
        elif name == "status.json":
            parsed[name] = json.loads(body)
        else:
            parsed[name] = body.decode("utf-8")
    return parsed


def events_in(calendar: object) -> list[object]:
    """The VEVENTs of a parsed calendar."""
    assert isinstance(calendar, icalendar.Calendar)
    return list(calendar.walk("VEVENT"))
