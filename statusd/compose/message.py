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
    # The same post with the time of the change added ("… (update at 14:05)"), for a platform
    # that refuses a text it already holds (X, Facebook): sent when the plain text is refused
    # although the channel's last post about the target says something else. None elsewhere.
    again: str | None = None
    # When the status starts and ends and when it was set, as ISO times in the site's
    # time zone (None: not given): channels that publish hours rather than text read them.
    starts: str | None = None
    until: str | None = None
    at: str | None = None
