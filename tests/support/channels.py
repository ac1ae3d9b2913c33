"""Channels built as the daemon builds them, and messages as compose makes them, for every channel test.

A channel test writes its statusd.yaml, then asks `ChannelBuilder.build` for the channel:
the secrets go into the environment first (a channel without its secret is inactive),
the file is read by `statusd.loading.load` and the channel made by
`statusd.channels.build_channel`, the one place the daemon makes channels. Every channel
built is closed after the test (the `channel_builder` fixture in tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import pytest

from statusd.channels import build_channel
from statusd.channels.base import Channel
from statusd.compose.message import Message
from statusd.loading import load
from statusd.textfit import SEPARATOR

C = TypeVar("C")

# The wording most channel tests post: a closure, then the site's link.
TEXT = "Bibliothèque centrale : fermé. Dégât des eaux."
LINK = "http://127.0.0.1:8080/#main"
# Texts each channel must count as its platform does: hostnames, IP addresses, several
# links, emoji, CJK and combining marks. A test repeats a row past the channel's limit,
# cuts it to fit, and the fake platform must accept it.
LENGTH_TABLE = {
    "hostnames": "Voir bib-lyon.fr, www.bib-lyon.fr/horaires et statut.bibliotheques-municipales-lyon.fr ",
    "ip addresses": "Serveur http://192.168.10.12:8080/statut ou 10.0.0.1, puis http://[2001:db8::1]/ ",
    "several links": "https://bib-lyon.fr/a https://exemple.org/tres/long/chemin?x=1&y=2 http://a.fr/b ",
    "emoji": "Fermé 🔥🚒 👩\u200d👩\u200d👧 🇫🇷 ⚠\ufe0f 👍🏽 ",
    "cjk": "図書館は本日 閉館します 明日 再開 ",
    "combining marks": "e\u0301te\u0301 cafe\u0301 n\u0303 a\u0308\u0301 ",
}


class ChannelBuilder:
    """Builds real channels from a statusd.yaml and remembers them, to close them all at the end."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self._made: list[Channel] = []

    def build(self, path: Path, name: str, kind: type[C], env: Mapping[str, str] | None = None) -> C:
        """The channel `name` of the config at `path`, its secrets set from `env` before loading."""
        for variable, value in (env or {}).items():
            self._monkeypatch.setenv(variable, value)
        config = load(path)
        channel = build_channel(config.channels[name], config.delivery)
        self._made.append(channel)
        assert isinstance(channel, kind), f"channel {name} is a {type(channel).__name__}, not a {kind.__name__}"
        return channel

    async def close(self) -> None:
        """Close every channel built, newest first."""
        while self._made:
            await self._made.pop().close()


def linked(text: str, link: str | None) -> str:
    """The text as compose ends it: a blank line, then the link (when there is one)."""
    return f"{text}{SEPARATOR}{link}" if link else text


def message(text: str, *, link: str | None = LINK, **fields: str) -> Message:
    """A message with exactly `text`; the other fields those of a closure of site main in French."""
    values = {"language": "fr", "event_id": "evt-42", "kind": "status_changed", "target": "main",
              "level": "closed", **fields}
    return Message(text=text, link=link, **values)
