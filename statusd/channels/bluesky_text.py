"""Bluesky's text rules: length in graphemes, and link facets at UTF-8 byte offsets."""

from __future__ import annotations

import re
from typing import Any

import regex

LINK = "app.bsky.richtext.facet#link"
_GRAPHEME = regex.compile(r"\X")
# A URL runs to the next space; trailing punctuation belongs to the sentence.
_URL = re.compile(r"https?://[^\s<>\"]+")
_TRAILING = ".,;:!?'\"»”’)]}"


def graphemes(text: str) -> int:
    """User-perceived characters (Unicode extended grapheme clusters), as Bluesky counts."""
    return len(_GRAPHEME.findall(text))


def link_facets(text: str) -> list[dict[str, Any]]:
    """A link facet for every URL in `text`, with the UTF-8 byte offsets Bluesky expects."""
    facets = []
    for match in _URL.finditer(text):
        url = _trim(match.group())
        start = len(text[: match.start()].encode())
        facets.append({
            "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
            "features": [{"$type": LINK, "uri": url}],
        })
    return facets


def _trim(url: str) -> str:
    while url and url[-1] in _TRAILING and not (url[-1] == ")" and "(" in url):
        url = url[:-1]
    return url
