"""What a status text may hold, and how much of a bad value an error may quote.

Every door to the wanted status (status.yaml, `statusd set`, a building
system's push) checks its texts here, so a text that would break XML,
iCalendar, JSON or a terminal never gets in, whichever way it came.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Any

MAX_MESSAGE = 2000
# Line breaks and tabs are fine in a message; other control characters are paste accidents or attacks.
ALLOWED_CONTROLS = frozenset("\n\t")
SNIPPET = 20


def bad_char(text: str) -> str | None:
    """Why `text` cannot be published (a lone surrogate or a control character), or None."""
    if text.isprintable():  # no Cc nor Cs character, in C: the common case, for every value of a file
        return None
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cs":
            return (f"holds half of a character (U+{ord(char):04X} at position {index + 1}); "
                    "write the character itself, not its escape")
        if category == "Cc" and char not in ALLOWED_CONTROLS:
            return (f"holds an invisible control character (U+{ord(char):04X} at position {index + 1}); "
                    "retype it or check the terminal's encoding")
    return None


def too_long(text: str) -> str | None:
    """Why `text` is too long for a message, or None."""
    if len(text) > MAX_MESSAGE:
        return f"is {len(text):,} characters long; keep a message under {MAX_MESSAGE:,} per language"
    return None


def problem(text: str) -> str | None:
    """The first reason `text` cannot be a message, or None."""
    return bad_char(text) or too_long(text)


def snippet(text: str) -> str:
    """A short, printable quote of the user's own input for an error message."""
    clean = "".join(c if c.isprintable() else "?" for c in text[: SNIPPET + 1])
    return repr(clean[:SNIPPET] + "…" if len(clean) > SNIPPET else clean)


def field(key: object) -> str:
    """A key as the field of a problem: printable and short, since it is the user's input too."""
    text = str(key)
    if len(text) <= SNIPPET and text.isprintable():
        return text  # as the loop below would give it, without going through each character
    text = "".join(c if c.isprintable() else "?" for c in str(key)[: SNIPPET + 1])
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "…"


def describe(value: Any) -> str:
    """What a YAML value is, for an error, quoting at most a short snippet of it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (yes/no)"
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else "a very large number"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return snippet(value)
    if isinstance(value, (datetime, date)):
        return "a date"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a YAML {type(value).__name__}"
