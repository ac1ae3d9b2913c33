"""Fit a message body and its link within a platform's length limit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

ELLIPSIS = "…"
SEPARATOR = "\n\n"
# Non-breaking spaces join what must stay together ("10:00 AM", "centrale :").
_NO_BREAK = frozenset("\u00a0\u202f\u2007\u2060")
# Stripped from the end of a shortened body so it never reads "centrale :…".
_DANGLING = " \t\n\u00a0\u202f,;:.·-–—"
_BLANK_RUNS = re.compile(r"\n{3,}")
# A scheme, "www.", a mail address or a bare domain with a path: what linkifiers take as a link.
_LINKISH = re.compile(r"[a-z][a-z0-9+.-]{0,30}://|^\W*www\.|@[\w-]+\.\w|[\w-]\.[^\W\d_]{2,}/", re.IGNORECASE)
# How many shorter prefixes are tried when the binary search's pick does not fit.
_CHECKED_BELOW = 8


def fit(body: str, link: str | None, limit: int | None, measure: Callable[[str], int]) -> str:
    """`body`, a blank line and `link`, shortened at a word boundary to fit `limit`.

    The link is always kept whole; the body gives way, ending with "…" (never
    glued to a link of the body's own, which is kept whole or cut before). When
    not even the link and a word fit, the link alone is returned, itself cut
    (and marked "…") only if it alone is over the limit.
    """
    body = normalize(body)
    whole = join(body, link)
    if limit is None or measure(whole) <= limit:
        return whole
    kept = _shorten(body, lambda prefix: measure(join(prefix + ending(prefix), link)) <= limit)
    if kept:
        return join(kept + ending(kept), link)
    if link is None or measure(link) <= limit:
        return link or ""
    kept = _cut_word(link, lambda prefix: measure(prefix + ELLIPSIS) <= limit)
    return kept + ELLIPSIS if kept else ""


def fit_with_tail(body: str, tail: str, link: str | None, limit: int | None,
                  measure: Callable[[str], int]) -> str:
    """`fit`, with `tail` kept whole right after the body (the body gives way first).

    When not even a word of the body fits beside the tail, it is `fit` without the tail.
    """
    body = normalize(body)

    def glued(prefix: str) -> str:
        return join(f"{prefix} {tail}", link)

    if limit is None or measure(glued(body)) <= limit:
        return glued(body)
    kept = _shorten(body, lambda prefix: measure(glued(prefix + ending(prefix))) <= limit)
    return glued(kept + ending(kept)) if kept else fit(body, link, limit, measure)


def normalize(body: str) -> str:
    """Trailing spaces stripped, runs of blank lines made one, no space at either end."""
    lines = [line.rstrip() for line in body.replace("\r\n", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def join(body: str, link: str | None) -> str:
    """The body and the link separated by a blank line (either may be empty)."""
    return SEPARATOR.join(part for part in (body, link) if part)


def _shorten(body: str, fits: Callable[[str], bool]) -> str:
    """The longest word-boundary prefix of `body` that `fits`, else a cut first word.

    A link in the body is a word: it is kept whole or the cut comes before it.
    Prefixes are made only as the search asks for them (about log n of them), so a
    long body costs a few measures of it, never one per word.
    """
    positions = _break_positions(body)
    best = _longest(len(positions), lambda i: _word_prefix(body, positions[i]), fits)
    if best is not None:
        return best
    word = body[: positions[0]] if positions else body
    return "" if _is_link(word) else _cut_word(word, fits)


def ending(kept: str) -> str:
    """The mark of a cut after `kept`: "…", set apart by a space when `kept` ends in a link
    (glued on, linkifiers and facets would take it as part of the URL)."""
    words = kept.split()
    return f" {ELLIPSIS}" if words and _is_link(words[-1]) else ELLIPSIS


def _word_prefix(body: str, position: int) -> str:
    """The body up to `position` without dangling punctuation, unless it ends in a link."""
    prefix = body[:position]
    words = prefix.split()
    if words and _is_link(words[-1]):
        return prefix.rstrip()  # a link's last character is its own ("…/a-", "…#main:")
    return prefix.rstrip(_DANGLING)


def _is_link(word: str) -> bool:
    """Whether a word is (or holds) a link a platform may make clickable."""
    return bool(_LINKISH.search(word))


def _break_positions(text: str) -> list[int]:
    """Indexes of the first space of each run of breaking whitespace."""
    return [
        i
        for i, char in enumerate(text)
        if _breaks(char) and i > 0 and not _breaks(text[i - 1])
    ]


def _breaks(char: str) -> bool:
    return char.isspace() and char not in _NO_BREAK


def _longest(count: int, prefix: Callable[[int], str], fits: Callable[[str], bool]) -> str | None:
    """The longest of `count` growing prefixes (`prefix(i)`) that fits: binary search, checked.

    A platform's count need not grow with the text (a URL cut short may count
    more than the whole URL), so the search is a guess verified a few steps
    downwards; past those, the search runs again below.
    """
    high = count
    while high > 0:
        low, top = 0, high
        while low < top:
            middle = (low + top) // 2
            if fits(prefix(middle)):
                low = middle + 1
            else:
                top = middle
        for i in range(low - 1, max(-1, low - 1 - _CHECKED_BELOW), -1):
            candidate = prefix(i)
            if candidate and fits(candidate):
                return candidate
        high = low - 1 - _CHECKED_BELOW
    return None


def _cut_word(word: str, fits: Callable[[str], bool]) -> str:
    """The longest prefix of `word` that fits and splits no character cluster."""
    cuts = [i for i in range(1, len(word)) if _cluster_boundary(word, i)]
    best = _longest(len(cuts), lambda i: word[: cuts[i]], fits)
    return best or ""


def _cluster_boundary(text: str, i: int) -> bool:
    """Whether cutting before text[i] keeps accents, emoji sequences and flags whole.

    An approximation of Unicode grapheme clusters, enough not to leave a bare
    combining mark or half a family emoji behind.
    """
    char, before = text[i], text[i - 1]
    if unicodedata.combining(char) or char in "\u200d\ufe0e\ufe0f" or before == "\u200d":
        return False
    if "\U0001f3fb" <= char <= "\U0001f3ff" or "\U000e0020" <= char <= "\U000e007f":
        return False  # skin-tone modifiers and tag sequences belong to the emoji before
    if unicodedata.category(char) in ("Mn", "Me", "Mc"):
        return False
    if _regional(char) and _regional(before):
        run = 0
        while run < i and _regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 0  # flags are pairs of regional indicators
    return True


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"
