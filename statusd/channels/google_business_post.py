"""Local posts for the Google Business Profile channel: the body one update makes, and finding it again.

A local post (v4 `accounts/*/locations/*/localPosts`) carries `summary` (at most 1,500
characters), `languageCode`, a `callToAction` LEARN_MORE to the site's status page, and
its `topicType`: STANDARD (an update), EVENT (with `event.title`, at most 58 characters,
and `event.schedule`: the status's start and end), or ALERT (`alertType` COVID_19, the one
alert type Google offers; use it only if that is what the library means).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from statusd.compose.message import Message

TITLE_CHARS = 58
# A post's createTime against the delivery's first attempt: Google's clock and ours may differ.
CLOCK_MARGIN = timedelta(minutes=2)


def post_body(message: Message, topic: str, today: date) -> dict[str, Any]:
    """The LocalPost to create for `message` as a `topic` post."""
    body: dict[str, Any] = {"languageCode": message.language, "summary": message.text, "topicType": topic}
    if message.link:
        body["callToAction"] = {"actionType": "LEARN_MORE", "url": message.link}
    if topic == "EVENT":
        body["event"] = {"title": _title(message.text), "schedule": _schedule(message, today)}
    elif topic == "ALERT":
        body["alertType"] = "COVID_19"
    return body


def posted_by(listed: Mapping[str, Any], message: Message, since: datetime | None,
              claimed: set[str]) -> Mapping[str, Any] | None:
    """The listed local post `message` made (same summary, made since `since`, claimed by no other
    delivery), or None."""
    posts = listed.get("localPosts")
    for post in posts if isinstance(posts, list) else []:
        if not isinstance(post, dict) or post.get("summary") != message.text:
            continue
        name = post.get("name")
        if not isinstance(name, str) or not name or name in claimed or post.get("state") == "REJECTED":
            continue
        if since is not None and not _made_since(post.get("createTime"), since):
            continue
        return post
    return None


def _made_since(stamp: Any, since: datetime) -> bool:
    try:
        made = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return True  # no readable time: judged by its text and claim alone
    if made.tzinfo is None:
        return True
    return made >= since - CLOCK_MARGIN


def _title(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "—"
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


def _schedule(message: Message, today: date) -> dict[str, Any]:
    """From the status's start (or now) to its end (or the end of the day it starts)."""
    start = _moment(message.starts or message.at) or datetime.combine(today, datetime.min.time())
    end = _moment(message.until) or start.replace(hour=23, minute=59, second=0, microsecond=0)
    return {"startDate": _date(start), "startTime": {"hours": start.hour, "minutes": start.minute},
            "endDate": _date(end), "endTime": {"hours": end.hour, "minutes": end.minute}}


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _date(moment: datetime) -> dict[str, int]:
    return {"year": moment.year, "month": moment.month, "day": moment.day}
