"""The channel contract every service implements, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig
from statusd.errors import redact


@dataclass(frozen=True)
class Reply:
    """Where a reply goes in a thread: the post it answers, and the thread's first post.

    Both are remote ids as the channel returned them in `Sent.remote_id`.
    """

    parent: str
    root: str


@dataclass(frozen=True)
class Sent:
    """What the platform answered: its id for the post, and a URL if it has one."""

    remote_id: str
    url: str | None = None


class ChannelError(Exception):
    """A send failed; subclasses say whether trying again can help.

    Its text goes to the log, the store and `statusd show`: a platform that
    echoes the request (a token in an error body, a secret URL path after a
    redirect) must not put a secret there, so the text is redacted once, here.
    """

    def __str__(self) -> str:
        return redact(super().__str__())


class TransientError(ChannelError):
    """Timeouts, 5xx, 429: try again, not before `retry_after` seconds if given."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """401, 403, 422 and the like: trying again will not help until a person acts."""


class DuplicateError(PermanentError):
    """The platform refused the text as a repeat of an earlier post (X 403, Facebook 506).

    The earlier post may be this delivery's own attempt: the worker looks it up
    before calling the delivery failed.
    """


def refuses_repeats(channel: object) -> bool:
    """Whether the channel's platform refuses a text it already holds (X, Facebook).

    Such a channel says so with a class constant `refuses_repeats = True`; its
    messages then carry a variant with the time of the change (Message.again).
    """
    return bool(getattr(channel, "refuses_repeats", False))


class Channel(Protocol):
    """One configured account or endpoint that messages are delivered to."""

    kind: ClassVar[str]
    # Each type's options (a frozen dataclass, checked at load) are declared in
    # statusd.channels.options, which the config check reads without this module.
    name: str
    language: str
    max_chars: int | None

    @property
    def honours_idempotency(self) -> bool:
        """Whether this platform (this server: a class constant or learned in `open`)
        recognises a repeated idempotency key, so a send whose outcome is unknown after
        a crash can simply be repeated."""
        ...

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        """Read the channel's checked options; connect later, in `open`."""
        ...

    def measure(self, text: str) -> int:
        """Length of `text` as this platform counts it."""
        ...

    async def open(self) -> None:
        """Connect and learn the platform's own limits (e.g. a Mastodon instance's max_chars)."""
        ...

    async def whoami(self) -> str:
        """Who this account posts as, checked against the platform (`statusd check --live`)."""
        ...

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        """Post `message` (as a reply in a thread if `reply_to`); raise TransientError or PermanentError.

        `created` is when the delivery was recorded: the same on every retry, so a
        channel can derive a record key of its own choosing from it (Bluesky's rkey).
        """
        ...

    async def delete(self, remote_id: str) -> str | None:
        """Remove an earlier post; where the platform only lets it be withdrawn another way,
        say how (shown by `statusd history`, e.g. Telegram's edit after 48 hours)."""
        ...

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        """Look up a post whose send outcome is unknown; None if it was not made.

        Only posts made at or after `since` (the delivery's first attempt)
        count: routine wording repeats, and an older post is not this one.
        `reply_to` is where the post would sit in its thread (Facebook's
        comments are not in the page's feed). Remote ids in `exclude` belong to
        other deliveries and are never this one.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
