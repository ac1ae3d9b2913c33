"""The message compose makes for one channel: the value every later stage carries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """An event rendered for one channel: the exact text it will post."""

    text: str
    language: str
    link: str | None
    event_id: str
    kind: str
    target: str
    level: str
