"""Current closures and emergencies as Common Alerting Protocol 1.2 alerts.

Each message is derived from the stored events of a site, so it is the same
after a restart: a closure's first event is an Alert, each later change while
it lasts an Update, and the reopening a Cancel, all referencing the earlier
messages and sharing the first one's identifier as `incidents`. A Cancel is
kept for CANCEL_KEEP after the reopening so pollers see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

from statusd.config.load import Config
from statusd.config.types import Site
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.safetext import clean
from statusd.web.doc import host
from statusd.web.feed import ATOM, tag
from statusd.web.words import text, words

CAP = "urn:oasis:names:tc:emergency:cap:1.2"
CANCEL_KEEP = timedelta(hours=24)
ALERTING = (Level.CLOSED, Level.EMERGENCY)
# (category, urgency, severity, certainty) by level; a reopening is past and minor.
PROFILE = {
    Level.EMERGENCY: ("Safety", "Immediate", "Severe", "Observed"),
    Level.CLOSED: ("Infra", "Immediate", "Minor", "Observed"),
}
ALL_CLEAR = ("Infra", "Past", "Minor", "Observed")


@dataclass(frozen=True)
class Message:
    """One CAP message about a site: the event it reports and the messages it follows."""

    site: Site
    msg_type: str
    event: Event
    earlier: tuple[Event, ...]
    sender: str

    @property
    def identifier(self) -> str:
        return identifier(self.site, self.event)

    @property
    def sent(self) -> str:
        return stamp(self.event.at, self.site)

    @property
    def references(self) -> str:
        return " ".join(f"{self.sender},{identifier(self.site, e)},{stamp(e.at, self.site)}" for e in self.earlier)


def identifier(site: Site, event: Event) -> str:
    return f"statusd-{site.id}-{event.id}"


def stamp(when: datetime, site: Site) -> str:
    """CAP's date-time: seconds and a numeric offset, never "Z"."""
    return when.astimezone(site.tz).replace(microsecond=0).isoformat()


def messages(config: Config, history: Sequence[Event], now: datetime,
             keep: timedelta = CANCEL_KEEP) -> list[Message]:
    """The latest message of each site with a closure in force or recently ended."""
    sender = f"statusd@{host(config.public_url)}"
    found = []
    for site in config.sites.values():
        events = [e for e in history if e.target == Target(site.id) and e.kind is EventKind.STATUS_CHANGED]
        message = _latest(site, events, sender, now, keep)
        if message is not None:
            found.append(message)
    return found


def _latest(site: Site, events: list[Event], sender: str, now: datetime, keep: timedelta) -> Message | None:
    """From a site's events, newest first: Alert, Update or Cancel, or None."""
    if not events:
        return None
    newest, older = events[0], events[1:]
    chain = _incident(older)
    if newest.level in ALERTING:
        return Message(site, "Update" if chain else "Alert", newest, tuple(chain), sender)
    if chain and now - newest.at < keep:
        return Message(site, "Cancel", newest, tuple(chain), sender)
    return None


def _incident(older: list[Event]) -> list[Event]:
    """The alerting events just before, oldest first: the messages already sent about it."""
    chain = []
    for event in older:
        if event.level not in ALERTING:
            break
        chain.append(event)
    return chain[::-1]


def alert(config: Config, message: Message) -> ET.Element:
    """The <alert> element, one <info> per configured language."""
    # Namespaces as plain xmlns attributes: ElementTree then writes them as they are.
    root = ET.Element("alert", xmlns=CAP)
    for name, value in (("identifier", message.identifier), ("sender", message.sender),
                        ("sent", message.sent), ("status", "Actual"), ("msgType", message.msg_type),
                        ("scope", "Public")):
        _add(root, name, value)
    if message.earlier:
        _add(root, "references", message.references)
        _add(root, "incidents", identifier(message.site, message.earlier[0]))
    for lang in config.languages:
        _info(root, config, message, lang)
    return root


def _info(root: ET.Element, config: Config, message: Message, lang: str) -> None:
    w, event, site = words(config, lang), message.event, message.site
    cancel = message.msg_type == "Cancel"
    category, urgency, severity, certainty = ALL_CLEAR if cancel else PROFILE[event.level]
    info = _add(root, "info")
    _add(info, "language", lang)
    _add(info, "category", category)
    headline = f"{site.name.get(lang, site.id)}: {w[event.level.value]}"
    _add(info, "event", headline)
    _add(info, "responseType", "AllClear" if cancel else ("Avoid" if event.level is Level.CLOSED else "Monitor"))
    for name, value in (("urgency", urgency), ("severity", severity), ("certainty", certainty)):
        _add(info, name, value)
    _add(info, "effective", message.sent)
    if event.until and not cancel:
        _add(info, "expires", stamp(event.until, site))
    _add(info, "senderName", site.name.get(lang, site.id))
    _add(info, "headline", headline)
    description = text(event.message, lang, config.languages)
    if description:
        _add(info, "description", description)
    _add(info, "web", site.url)
    _add(_add(info, "area"), "areaDesc", site.name.get(lang, site.id))


def document(config: Config, message: Message) -> bytes:
    """One alert as a standalone CAP 1.2 document."""
    root = alert(config, message)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def index(config: Config, found: Sequence[Message], updated: str) -> bytes:
    """cap.xml: an Atom feed whose entries carry each current alert inline, as CAP feeds do."""
    lang = config.default_language
    feed = ET.Element("feed", xmlns=ATOM)
    _atom(feed, "id", tag(config, "cap"))
    _atom(feed, "title", words(config, lang)["cap"])
    _atom(feed, "updated", max((m.sent for m in found), default=updated, key=_sortable))
    _atom(_atom(feed, "author"), "name", words(config, lang)["author"])
    ET.SubElement(feed, "link", rel="self", href=f"{config.public_url}/cap.xml")
    for message in found:
        entry = _atom(feed, "entry")
        _atom(entry, "id", tag(config, "cap", message.identifier))
        _atom(entry, "title", f"{message.msg_type}: {message.site.name.get(lang, message.site.id)}")
        _atom(entry, "updated", message.sent)
        ET.SubElement(entry, "link", rel="alternate", type="application/cap+xml",
                      href=f"{config.public_url}/cap/{message.identifier}.xml")
        content = _atom(entry, "content", type="application/cap+xml")
        content.append(alert(config, message))
    ET.indent(feed)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True)) + b"\n"


def _sortable(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _add(parent: ET.Element, name: str, value: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, name)
    element.text = None if value is None else clean(value)  # XML 1.0 refuses controls
    return element


def _atom(parent: ET.Element, name: str, value: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, name, attrs)
    element.text = None if value is None else clean(value)  # XML 1.0 refuses controls
    return element
