"""Google Business Profile channel: a closure becomes special hours, `limited` and `emergency` a local post.

Facts (Business Profile APIs, see docs/platforms.md):
- Hours live on the Business Information API v1: `GET locations/{id}?readMask=…` and
  `PATCH locations/{id}?updateMask=specialHours`, which replaces the whole list of
  special-hour periods. A period is shorter than 24 hours, on one date (`closed: true`
  for the whole day); periods must not overlap (else 400 INVALID_ARGUMENT).
- Local posts live on the older v4 API: `accounts/{a}/locations/{l}/localPosts` (create,
  list, delete); `summary` holds at most 1,500 characters; `topicType` STANDARD, EVENT
  (needs `event.schedule`) or ALERT (`alertType` COVID_19, the only kind Google has).
- OAuth 2.0: an access token from the refresh token (google_business_api.py); no
  idempotency key anywhere, and quotas per minute (429 RESOURCE_EXHAUSTED).

How statusd uses them: each update reads the location's special hours, changes only the
days of its closure (the library's own holiday hours on other days are never touched; on
the closure's days they are kept aside and put back when it ends) and records in the
remote id what it added and took off (google_business_hours.Change), so that undo puts
back exactly what was there. Look-up: the hours are there or not, and local posts can be
listed (the newest 100), so a send whose answer was lost is found rather than repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from typing import ClassVar

import structlog

from statusd.channels import google_business_hours as hours
from statusd.channels import http
from statusd.channels.base import PermanentError, Reply, Sent
from statusd.channels.google_business_api import TOKEN_URL, GoogleApi
from statusd.channels.google_business_errors import NotFound
from statusd.channels.google_business_post import post_body, posted_by
from statusd.channels.options import GoogleBusinessOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

log = structlog.get_logger()

INFO_URL = "https://mybusinessbusinessinformation.googleapis.com/v1"
POSTS_URL = "https://mybusiness.googleapis.com/v4"
MAX_CHARS = 1500  # a local post's summary
CLOSING = frozenset({"closed", "emergency"})
PLANNING = frozenset({"closure_planned", "closure_reminder"})
# An open-ended closure is written this many days ahead at most (the option is clamped to it).
MAX_OPEN_ENDED = 60
_REMEMBERED = 256  # changes kept per idempotency key, for a retry or look-up in this process


class GoogleBusiness(http.HttpChannel):
    """One Business Profile location: special hours for closures, local posts for limited and emergency."""

    kind: ClassVar[str] = "google_business"
    # No idempotency key; but the hours can be read back and the posts listed (find).
    honours_idempotency: ClassVar[bool] = False
    Options = GoogleBusinessOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        super().__init__(config, delivery, max_chars=MAX_CHARS)
        options: GoogleBusinessOptions = config.options
        base = str(options.api_url).rstrip("/") if options.api_url else None
        self._location = f"{base or INFO_URL}{'/v1' if base else ''}/locations/{options.location_id}"
        self._posts = (f"{base or POSTS_URL}{'/v4' if base else ''}/accounts/{options.account_id}"
                       f"/locations/{options.location_id}/localPosts")
        self._topics = {"limited": options.limited_post, "emergency": options.emergency_post}
        self._days = min(max(1, options.open_ended_days), MAX_OPEN_ENDED)
        secrets = config.secrets
        self._api = GoogleApi(self._http_session, self._seconds, token_url=str(options.token_url or TOKEN_URL),
                              client_id=secrets["client_id"].read() or "",
                              client_secret=secrets["client_secret"].read() or "",
                              refresh_token=secrets["refresh_token"].read() or "",
                              source=secrets["refresh_token"].describe(), channel=self.name)
        self._done: dict[str, tuple[hours.Change, list[hours.Period]]] = {}

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        """Nothing to learn: the limit is Google's fixed 1,500."""

    async def whoami(self) -> str:
        found = await self._api.call("GET", self._location, "read the location", params={"readMask": "name,title"})
        return f"Google Business Profile location {str(found.get('title'))!r:.80} ({found.get('name')})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        if self.measure(message.text) > MAX_CHARS:
            raise PermanentError(f"the message is {self.measure(message.text)} characters; a Google local post "
                                 f"takes at most {MAX_CHARS}: shorten the template for channel {self.name}")
        change = await self._hours(message, reply_to, idempotency_key)
        name: str | None = None
        url = None
        if (topic := self._topic(message)) is not None:
            made = await self._api.call("POST", self._posts, "create the local post",
                                        body=post_body(message, topic, self._today(message)))
            name, url = str(made.get("name") or ""), made.get("searchUrl")
            if not name:
                raise PermanentError("Google made the local post but answered no name for it")
            log.info("google_post_created", channel=self.name, post=name, topic=topic)
        done = hours.Change(change.added, change.removed, change.held, change.displaced, post=name)
        self._done.pop(idempotency_key, None)
        return Sent(remote_id=done.remote_id(), url=url if isinstance(url, str) else None)

    async def delete(self, remote_id: str) -> str | None:
        """Take the update back: delete its local post and reverse its change to the special hours."""
        change = _parse(remote_id)
        if change.post:
            try:
                await self._api.call("DELETE", f"{self._posts}/{change.post.rsplit('/', 1)[-1]}",
                                     "delete the local post")
            except NotFound:
                log.info("google_post_already_deleted", channel=self.name, post=change.post)
        if change.added or change.removed:
            present, _ = await self._read()
            wanted = hours.undo(present, change)
            if wanted != sorted(present):
                await self._write(wanted)
            log.info("google_hours_restored", channel=self.name, added=len(change.added),
                     removed=len(change.removed))
        return None

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        """The update is made when the location's hours are as it wants them and, where it makes
        one, a local post with its text exists since `since` that no other delivery claims."""
        before = _before(reply_to)
        change = hours.Change(held=before.held, displaced=before.displaced) if before else hours.Change()
        if _speaks_for_hours(message):
            present, regular = await self._read()
            remembered = self._done.get(idempotency_key)
            if remembered is not None and remembered[1] == present:
                change = remembered[0]  # this process planned it: the exact change
            else:
                wanted = self._wanted(message, regular)
                _, left = hours.plan(present, wanted, before, self._today(message), equal_is_ours=True)
                if left.added or left.removed:
                    return None  # the hours are not as the update leaves them: it was not made
                change = hours.recovered(present, wanted, before, left, self._today(message))
        if self._topic(message) is None:
            return Sent(remote_id=change.remote_id())
        claimed = {c.post for c in (_maybe(r) for r in exclude) if c is not None and c.post}
        listed = await self._api.call("GET", self._posts, "list the local posts", params={"pageSize": "100"})
        post = posted_by(listed, message, since, claimed)
        if post is None:
            return None
        self._done.pop(idempotency_key, None)
        done = hours.Change(change.added, change.removed, change.held, change.displaced, post=str(post["name"]))
        url = post.get("searchUrl")
        return Sent(remote_id=done.remote_id(), url=url if isinstance(url, str) else None)

    async def _hours(self, message: Message, reply_to: Reply | None, key: str) -> hours.Change:
        """Bring the special hours to what the update wants; the change made (nothing to do: the
        incident's state carried on, so that a later reopening knows what is statusd's).

        The change is remembered, with the hours it leaves, before it is written: a retry or
        look-up in this process that finds those hours knows it exactly.
        """
        before = _before(reply_to)
        if not _speaks_for_hours(message):
            return hours.Change(held=before.held, displaced=before.displaced) if before else hours.Change()
        present, regular = await self._read()
        remembered = self._done.get(key)
        if remembered is not None and remembered[1] == present:
            return remembered[0]  # an earlier attempt wrote it; its post failed
        wanted = self._wanted(message, regular)
        equal_is_ours = message.kind == "closure_reminder" or (message.kind == "status_changed"
                                                               and message.starts is not None)
        result, change = hours.plan(present, wanted, before, self._today(message), equal_is_ours=equal_is_ours)
        self._remember(key, change, result)
        if result != present:
            await self._write(result)
            log.info("google_hours_written", channel=self.name, added=[p.text() for p in change.added],
                     removed=[p.text() for p in change.removed])
        return change

    def _wanted(self, message: Message, regular: hours.Regular | None) -> list[hours.Period]:
        """The periods the update wants: its closure's days, or none (open, limited)."""
        if message.level not in CLOSING or "/" in message.target:
            return []
        moment = message.starts or message.at
        if moment is None:
            return []
        until = datetime.fromisoformat(message.until) if message.until else None
        return hours.closure(datetime.fromisoformat(moment), until, self._today(message), regular, self._days)

    def _topic(self, message: Message) -> str | None:
        topic = self._topics.get(message.level) if message.kind == "status_changed" else None
        return None if topic in (None, "none") else topic

    def _today(self, message: Message) -> date:
        """Today in the site's time zone (the offset its update was made in)."""
        zone = datetime.fromisoformat(message.at).tzinfo if message.at else None
        return now(zone).date()

    async def _read(self) -> tuple[list[hours.Period], hours.Regular | None]:
        found = await self._api.call("GET", self._location, "read the location's hours",
                                     params={"readMask": "name,regularHours,specialHours"})
        special = found.get("specialHours")
        listed = special.get("specialHourPeriods") if isinstance(special, dict) else None
        try:
            present = sorted(hours.from_google(p) for p in listed or [] if isinstance(p, dict))
            regular = hours.regular_from_google(found.get("regularHours"))
        except READ_ERRORS as err:
            raise PermanentError(f"Google answered hours statusd cannot read ({type(err).__name__}): "
                                 "check the location's hours in the Business Profile") from err
        return present, regular

    async def _write(self, periods: Iterable[hours.Period]) -> None:
        body = {"specialHours": {"specialHourPeriods": [p.to_google() for p in periods]}}
        await self._api.call("PATCH", self._location, "change the location's special hours",
                             params={"updateMask": "specialHours"}, body=body)

    def _remember(self, key: str, change: hours.Change, result: list[hours.Period]) -> None:
        self._done[key] = (change, result)
        while len(self._done) > _REMEMBERED:
            self._done.pop(next(iter(self._done)))


# What reading hostile hours may raise: OverflowError is `"hours": 1e400` (an infinite float).
READ_ERRORS = (KeyError, TypeError, ValueError, OverflowError)


def now(zone: tzinfo | None) -> datetime:
    """The time now in `zone` (tests move it)."""
    return datetime.now(zone)


def _speaks_for_hours(message: Message) -> bool:
    """Site-level status updates and planned closures change hours; services and sensors do not,
    nor a message recorded before messages carried their times (nothing to place it by)."""
    site_level = "/" not in message.target and message.at is not None
    return site_level and (message.kind == "status_changed" or (message.kind in PLANNING and
                                                                 message.level in CLOSING))


def _before(reply_to: Reply | None) -> hours.Change | None:
    """What the incident's previous update left (its remote id), or None outside an incident."""
    return _maybe(reply_to.parent) if reply_to is not None else None


def _maybe(remote_id: str) -> hours.Change | None:
    try:
        return hours.Change.parse(remote_id)
    except (TypeError, ValueError, KeyError):
        return None


def _parse(remote_id: str) -> hours.Change:
    change = _maybe(remote_id)
    if change is None:
        raise PermanentError(f"{remote_id!r:.60} is not a Google Business Profile change made by statusd")
    return change
