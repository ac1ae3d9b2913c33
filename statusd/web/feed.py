"""The updates as an Atom 1.0 feed (RFC 4287), one feed per language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from statusd.config.load import Config
from statusd.safetext import clean
from statusd.web.doc import host
from statusd.web.words import target_name, text, words

ATOM = "http://www.w3.org/2005/Atom"
# The date in tag: URIs (RFC 4151); fixed so that ids never change.
TAG_DATE = "2024"
KIND_WORD = {"closure_planned": "planned", "closure_reminder": "planned"}


def tag(config: Config, *parts: str) -> str:
    """A stable tag: URI under the public address's host."""
    return f"tag:{host(config.public_url)},{TAG_DATE}:statusd/" + "/".join(parts)


def atom(config: Config, snap: Mapping[str, Any], lang: str) -> bytes:
    """The feed of `snap["updates"]` in `lang`."""
    w = words(config, lang)
    updates = snap["updates"]
    feed = ET.Element("feed", {"xmlns": ATOM, "xml:lang": lang})
    _add(feed, "id", tag(config, "feed", lang))
    _add(feed, "title", w["title"])
    _add(feed, "updated", updates[0]["at"] if updates else snap["generated_at"])
    _add(_add(feed, "author"), "name", w["author"])
    _link(feed, "self", f"{config.public_url}/feed.atom?lang={lang}", "application/atom+xml")
    _link(feed, "alternate", f"{config.public_url}/?lang={lang}", "text/html")
    for item in updates:
        _entry(feed, config, snap, item, lang)
    ET.indent(feed)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True)) + b"\n"


def title(config: Config, snap: Mapping[str, Any], item: Mapping[str, Any], lang: str) -> str:
    """"Central Library: Closed", or "Planned — Central Library: Closed"."""
    w = words(config, lang)
    head = f"{target_name(snap['sites'], item['target'], lang)}: {w[item['level']]}"
    kind = KIND_WORD.get(item["kind"])
    return f"{w[kind]} — {head}" if kind else head


def _entry(feed: ET.Element, config: Config, snap: Mapping[str, Any], item: Mapping[str, Any],
           lang: str) -> None:
    entry = _add(feed, "entry")
    _add(entry, "id", tag(config, "update", item["id"], lang))
    _add(entry, "title", title(config, snap, item, lang))
    _add(entry, "updated", item["at"])
    _link(entry, "alternate", f"{config.public_url}/?lang={lang}#update-{item['id']}", "text/html")
    _add(entry, "category", term=item["level"])
    message = text(item["message"], lang, config.languages)
    _add(entry, "content", message or title(config, snap, item, lang), type="text")


def _add(parent: ET.Element, name: str, value: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, name, attrs)
    element.text = None if value is None else clean(value)  # XML 1.0 refuses controls
    return element


def _link(parent: ET.Element, rel: str, href: str, kind: str) -> None:
    ET.SubElement(parent, "link", {"rel": rel, "href": href, "type": kind})
