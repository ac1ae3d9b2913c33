"""Text that is valid wherever it goes: checks for the doors, cleaning for the outputs.

A staff message, a sensor id or a reason may hold characters no output can
carry: lone surrogates (no UTF-8 for them), C0/C1 control characters (not
allowed in XML 1.0, a line break inside an iCalendar line, or a terminal
escape sequence). The doors refuse them with `problem`; the outputs clean
what is already stored (rows written before the doors checked) with `clean`,
and terminals get `terminal`, which shows each control as a visible escape.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["TerminalText", "clean", "clean_tree", "problem", "terminal"]

# C0 except tab and newline, DEL and C1, lone surrogates, and the two non-characters XML refuses.
_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BAD_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"


def problem(text: str, newlines: bool = True) -> str | None:
    """Why `text` cannot be taken (one phrase, naming the character and where), or None."""
    found = (_BAD if newlines else _BAD_ONE_LINE).search(text)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"holds {kind} (U+{ord(char):04X}) at character {found.start() + 1}; remove it"


def clean(text: str) -> str:
    """`text` with line ends made `\\n` and every character no output can carry replaced by U+FFFD."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _BAD.sub(REPLACEMENT, text)


def clean_tree(value: Any) -> Any:
    """`clean` applied to every string of a JSON-like tree, keys included."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {clean_tree(k): clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_tree(v) for v in value]
    return value


def terminal(text: str) -> str:
    """`text` safe to print on a terminal: each control shown as a visible escape such as `\\x1b`."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _BAD.sub(_visible, text)


class TerminalText(io.TextIOBase):
    """A text stream that writes through `terminal`: what a command prints never drives the terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(terminal(text))
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()

    def fileno(self) -> int:
        return self._out.fileno()


def _visible(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
