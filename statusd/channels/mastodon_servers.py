"""What a Mastodon-API server says of itself, how it counts a status and how it rewrites one.

Many servers speak Mastodon's API without being Mastodon (docs/platforms.md). Only stock
Mastodon counts every URL as `characters_reserved_per_url` and honours Idempotency-Key;
the others seen count URLs at their raw length (whatever they advertise), ignore the
key, refuse a long status with their own words, and may rewrite typed entities.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex  # \X: a grapheme cluster
from mastodon._url_regex import url_regex  # Mastodon.py's port of the server's URL pattern

DEFAULT_MAX_CHARS = 500  # stock Mastodon, until the instance says otherwise
URL_LENGTH = 23  # stock Mastodon: every URL it recognises counts this much
# Stock Mastodon reports a plain release ("4.3.2"); pre-releases ("4.4.0-beta.1") are
# Mastodon too. Other servers add a suffix ("2.7.2 (compatible; ...)", "0.17+git-..."),
# report their own name, or a 0.x number. Idempotency-Key came with Mastodon 2.x.
_STOCK_VERSION = re.compile(r"([2-9]|[1-9]\d)\.\d+\.\d+(-(alpha|beta|rc)\.?\d+)?")
_STOCK_SOURCE = "github.com/mastodon/mastodon"
# What Mastodon.py's pattern may miss but a server may still link: one per scheme.
_URL_LIKE = re.compile(r"https?://(?:(?!https?://)\S)+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\"»…*"
_PARAGRAPH = re.compile(r"</p>\s*<p[^>]*>", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_ANCHOR = re.compile(r"<a\b[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_LINK_MARK = "\x00link\x00"
# "Validation failed: Text character limit of 500 exceeded" (Mastodon, 422),
# "text with spoiler exceed max chars (300)", "Status is too long" (others, 400).
_TOO_LONG = re.compile(r"character limit|max(imum)? chars|too long|exceed", re.IGNORECASE)
_NUMBER = re.compile(r"\b(\d{2,7})\b")


@dataclass(frozen=True)
class Instance:
    """A server's limits and kind, as its instance endpoint answered (or the defaults)."""

    max_chars: int | None = None  # None: the server did not say
    url_length: int = URL_LENGTH  # characters_reserved_per_url as advertised
    version: str = ""
    stock: bool = False  # a plain Mastodon: URLs count url_length, Idempotency-Key honoured
    endpoint: str = ""  # "/api/v2/instance", "/api/v1/instance", or "" when none answered

    @property
    def read(self) -> bool:
        """Whether the limit came from the server rather than the default."""
        return self.max_chars is not None


def instance_from(answer: Mapping[str, Any] | None, endpoint: str) -> Instance | None:
    """The Instance an answer of /api/v2/instance or /api/v1/instance describes; None if none."""
    if not isinstance(answer, Mapping):
        return None
    statuses = _dig(answer, "configuration", "statuses")
    limit = _positive(statuses.get("max_characters")) or _positive(answer.get("max_toot_chars"))
    per_url = _positive(statuses.get("characters_reserved_per_url")) or URL_LENGTH
    version = str(answer.get("version") or "")
    return Instance(max_chars=limit, url_length=per_url, version=version,
                    stock=is_stock(version, answer.get("source_url")), endpoint=endpoint)


def is_stock(version: str, source_url: Any = None) -> bool:
    """Whether `version` (and `source_url`, when given) is stock Mastodon's."""
    if source_url and _STOCK_SOURCE not in str(source_url).lower():
        return False
    return bool(_STOCK_VERSION.fullmatch(version.strip()))


def measure(text: str, url_length: int = URL_LENGTH, *, raw_urls: bool = False,
            graphemes: bool = False) -> int:
    """Length as the server counts it, never less.

    Stock Mastodon counts grapheme clusters (`graphemes`) and each URL `url_length`;
    the other servers seen count code points, which are never fewer, and URLs at
    their raw length (`raw_urls`: each URL the larger of the two, in case).
    """
    total, last = 0, 0
    for match in url_regex.finditer(text):
        url = match.group(3)
        total += _unlinked(text[last:match.start(3)], url_length, raw_urls, graphemes)
        total += max(url_length, len(url)) if raw_urls else url_length
        last = match.end(3)
    return total + _unlinked(text[last:], url_length, raw_urls, graphemes)


def _unlinked(text: str, url_length: int, raw_urls: bool, graphemes: bool) -> int:
    size = len(regex.findall(r"\X", text)) if graphemes else len(text)
    if raw_urls:
        return size
    # A URL the pattern missed still counts at least url_length in case the server links it.
    short = (url_length - len(m.group().rstrip(_TRAILING)) for m in _URL_LIKE.finditer(text))
    return size + sum(max(0, gap) for gap in short)


def too_long(code: int, detail: str) -> int | None:
    """The limit a refusal names (0 if it names none) when it says the status is too long;
    None when the refusal is about something else."""
    if code not in (400, 422) or not _TOO_LONG.search(detail):
        return None
    numbers = [int(n) for n in _NUMBER.findall(detail)]
    return numbers[-1] if numbers else 0


def plain_text(content: str) -> str:
    """A status's `content` (HTML) back as the text that was posted."""
    text = _BREAK.sub("\n", _PARAGRAPH.sub("\n\n", content))
    return html.unescape(_TAG.sub("", text))


def comparable(text: str) -> str:
    """Text reduced to what survives a server's rewriting: entities (a server may turn a
    typed "&amp;" into "&"), links (shown shortened), Unicode form and spacing."""
    text = html.unescape(html.unescape(text))
    text = url_regex.sub(lambda m: m.group(2) + _LINK_MARK, text)
    text = _URL_LIKE.sub(_LINK_MARK, text)
    return " ".join(unicodedata.normalize("NFC", text).split())


def comparable_content(content: str) -> str:
    """A status's HTML `content` reduced as `comparable` reduces the text that was sent."""
    return comparable(plain_text(_ANCHOR.sub(_anchor_text, content)))


def _anchor_text(match: re.Match[str]) -> str:
    shown = html.unescape(_TAG.sub("", match.group(1))).strip()
    # Hashtags and mentions are linked too, but their text is what was typed.
    return shown if shown.startswith(("#", "@")) else " https://link.invalid/ "


def _dig(answer: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    value: Any = answer
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
