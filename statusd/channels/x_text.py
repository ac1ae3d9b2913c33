"""How X counts and keeps a post's text: twitter-text's weighted length (config v3), and the
text reduced to what survives X's rewriting (t.co links, HTML escapes, spacing)."""

from __future__ import annotations

import html
import re
import unicodedata

URL_WEIGHT = 23
# X refuses posts holding these (twitter-text's invalid characters); they are never visible.
INVALID = dict.fromkeys(map(ord, "\ufffe\ufeff\uffff"))

_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
# A bare domain never swallows the scheme of a URL glued to it ("0.https://...").
_URL = re.compile(
    r"(?P<scheme>https?://)?"
    rf"(?P<host>(?:{_LABEL}\.)+(?P<tld>[^\W\d_]{{2,}}+)(?!://)|(?(scheme)[\w.-]+|(?!)))"
    r"(?::\d{1,5})?(?:[/?#][!-~]*)?",
    re.IGNORECASE,
)
_URL_BEFORE = re.compile(r"[\w@.\-/:#$]")
_TRAILING = ".,;:!?'\")]}>"
# Code points an emoji starts with: roughly Unicode's Extended_Pictographic (no data file needed).
_PICTO = re.compile(
    "[\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u2388\u23cf"
    "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf"
    "\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff]"
)
# twemoji matches FE0F after these separately (2 more); after astral pictographs we assume so too.
_FE0F_APART = re.compile("[\u23e9-\u23ec\u23f0\u23f3\u267e\u26ce\u2705\u2728\u274c\u274e"
                         "\u2753-\u2755\u2795-\u2797\u27b0\u27bf\U00010000-\U0010ffff]")
_MOD = "(?:[\U0001f3fb-\U0001f3ff]|\ufe0f)"
_EMOJI = re.compile(
    "[#*0-9]\ufe0f?\u20e3"                                       # keycaps
    "|[\u00a9\u00ae\u2122]\ufe0f"                                 # ©️ ®️ ™️ (bare: text)
    "|[\U0001f1e6-\U0001f1ff]{2}"                                 # flags
    "|\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f"               # subdivision flags
    f"|(?P<seq>{_PICTO.pattern}{_MOD}?(?:\u200d{_PICTO.pattern}{_MOD}?)+)"  # ZWJ sequences
    f"|(?P<one>{_PICTO.pattern})(?P<mod>{_MOD})?"
)


def weighted_length(text: str) -> int:
    """Length as X counts it: see twitter-text's config v3 (weights 1 and 2, URLs 23).

    Where this approximation cannot tell what X recognises, it counts the larger of
    the two readings, so a text it accepts is never refused as too long.
    """
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        after_word = match.start() > 0 and _URL_BEFORE.match(text[match.start() - 1])
        if not url or (after_word and not match["scheme"]):
            continue  # "info@bib.fr" holds no link on X
        total += _chars_weight(text[position : match.start()])
        # With a scheme and a real-looking domain it is always a link on X; for anything
        # else (bare domains, IP addresses, glued to a word) X may or may not make it one.
        sure = bool(match["scheme"] and match["tld"]) and not after_word
        total += URL_WEIGHT if sure else max(URL_WEIGHT, _chars_weight(url))
        position = match.start() + len(url)
    return total + _chars_weight(text[position:])


def _chars_weight(text: str) -> int:
    total, position = 0, 0
    for match in _EMOJI.finditer(text):
        total += _plain_weight(text[position : match.start()]) + _emoji_weight(match)
        position = match.end()
    return total + _plain_weight(text[position:])


def _emoji_weight(match: re.Match[str]) -> int:
    if match["one"] and match["mod"] == "\ufe0f" and _FE0F_APART.match(match["one"]):
        return 4
    return 2


def _plain_weight(text: str) -> int:
    return sum(1 if any(lo <= ord(c) <= hi for lo, hi in _LIGHT) else 2 for c in text)


def comparable(text: str) -> str:
    """A post's text reduced to what survives X's rewriting: URLs (t.co), escapes, spacing."""
    text = unicodedata.normalize("NFC", html.unescape(text)).translate(INVALID)
    return " ".join(_URL.sub(" ", text).split())
