"""Facebook page channel: the Graph API over aiohttp, posting as the page with its access token.

The token travels in the Authorization header, never in a URL, so it cannot land in a log.
What Graph's answers and errors mean is read in facebook_errors.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from statusd.channels import http
from statusd.channels.base import ChannelError, PermanentError, Reply, Sent, TransientError
from statusd.channels.facebook_errors import answer, usage_share
from statusd.channels.options import FacebookOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig
from statusd.textfit import SEPARATOR

GRAPH_URL = "https://graph.facebook.com/v21.0"
WEB_URL = "https://www.facebook.com"
MAX_CHARS = 63_206
# How many recent posts `find` reads (the first page of the feed).
FIND_LIMIT = 25

_ID = re.compile(r"[0-9A-Za-z_.-]{1,100}")


class FacebookPage(http.HttpChannel):
    """Posts on a Facebook page's feed; thread updates become comments on the first post."""

    kind: ClassVar[str] = "facebook"
    # Graph has no idempotency key: after a crash `find` looks the post up instead.
    honours_idempotency: ClassVar[bool] = False
    # Graph answers #506 (or #368 "already posted") to a text the page posted recently.
    refuses_repeats: ClassVar[bool] = True

    Options = FacebookOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        super().__init__(config, delivery, max_chars=MAX_CHARS)
        options: FacebookOptions = config.options
        self._page_id = str(options.page_id)
        self._token = options.token.read() or ""
        self._token_source = options.token.describe()
        self._graph = str(options.graph_url or GRAPH_URL).rstrip("/")
        # A post older than a delivery may live cannot be the one a crashed send made.
        self._recent = delivery.deadline

    def measure(self, text: str) -> int:
        # Facebook counts characters (code points); links count in full.
        return len(text)

    async def open(self) -> None:
        self._http_session()

    async def whoami(self) -> str:
        data = await self._call("GET", "me", "read who the token is for",
                                params={"fields": "id,name"})
        who, name = str(data.get("id", "")), str(data.get("name", ""))
        if who != self._page_id:
            raise PermanentError(
                f"the token from {self._token_source} is for {name!r} (id {who}), not page "
                f"{self._page_id}; set that page's access token there, not a user token")
        return f"Facebook page {name} (id {who})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        if reply_to is not None:
            # A page cannot reply to its own post: the update is a comment on the thread's
            # first post, so every update sits under the post patrons saw first.
            path = f"{_checked_id(reply_to.root, 'post')}/comments"
            data = await self._call("POST", path, "comment on the post",
                                    form={"message": message.text})
            return Sent(remote_id=_remote_id(data, "comment"))
        data = await self._call("POST", self._feed(), "post to the page",
                                form=feed_fields(message))
        post_id = _remote_id(data, "post")
        return Sent(remote_id=post_id, url=f"{WEB_URL}/{post_id}")

    async def delete(self, remote_id: str) -> None:
        data = await self._call("DELETE", _checked_id(remote_id, "post or comment"),
                                "delete the post")
        if data.get("success") is not True:
            raise PermanentError(f"Facebook did not delete {remote_id}: it answered {http.snippet(repr(data))}")

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        """The page's recent post (or, for a thread update, comment) with this text,
        made since the delivery's first attempt."""
        earliest = since.timestamp() - 60 if since else time.time() - self._recent
        if reply_to is not None:
            # Thread updates are comments on the first post, and comments are not in the feed.
            path, text, action = f"{_checked_id(reply_to.root, 'post')}/comments", message.text, "read the comments"
        else:
            path, text, action = self._feed(), feed_fields(message).get("message", ""), "read the page's feed"
        params = {"fields": "id,message,created_time", "limit": str(FIND_LIMIT)}
        if reply_to is not None:
            params["order"] = "reverse_chronological"  # comments come oldest first otherwise
        data = await self._call("GET", path, action, params=params)
        wanted = _comparable(text)
        for post in _entries(data):
            if str(post["id"]) in exclude:
                continue  # another delivery's post, with the same words
            if _comparable(post.get("message")) == wanted and _created(post) >= earliest:
                post_id = str(post["id"])
                return Sent(remote_id=post_id, url=None if reply_to else f"{WEB_URL}/{post_id}")
        return None

    def _feed(self) -> str:
        return f"{_checked_id(self._page_id, 'page')}/feed"

    async def _call(self, method: str, path: str, action: str, *,
                    form: Mapping[str, str] | None = None,
                    params: Mapping[str, str] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"}
        url = f"{self._graph}/{path}"
        async with http.mapped(f"the Graph API at {_where(self._graph)}", self._seconds):
            async with self._http_session().request(
                method, url, data=dict(form) if form is not None else None,
                params=params, headers=headers,
            ) as response:
                text = await response.text(errors="replace")
                self._note_usage(response.headers)
        try:
            return answer(response.status, response.headers, text, action,
                          token_from=self._token_source)
        except ChannelError as err:
            raise type(err)(http.redact(str(err), [self._token]),
                            **_retry(err)) from None

    async def token_expiry(self) -> dict[str, float | None]:
        """When the token and its data access expire (debug_token; None: never), for health."""
        data = await self._call("GET", "debug_token", "check the token",
                                params={"input_token": self._token})
        info = data.get("data") if isinstance(data.get("data"), dict) else {}
        assert isinstance(info, dict)
        if info.get("is_valid") is False:
            raise PermanentError(f"Facebook says the token from {self._token_source} is no longer "
                                 "valid; set a new page access token there")
        return {key: float(info[key]) if isinstance(info.get(key), int) and info[key] > 0 else None
                for key in ("expires_at", "data_access_expires_at")}

    def _note_usage(self, headers: Mapping[str, str]) -> None:
        """Keep the highest share (percent) in the usage headers: the posting budget reads it."""
        if (share := usage_share(headers)) is not None:
            self.usage_percent = share


def feed_fields(message: Message) -> dict[str, str]:
    """The form fields of a feed post: the text, and the message's link as an attachment.

    Facebook shows an attached link as a preview card (title, picture, clickable), so
    the same URL left at the end of the text would show twice; it is taken off. A text
    that does not end with its link (cut to fit) is posted whole.
    """
    fields = {}
    text = message.text
    if message.link:
        fields["link"] = message.link
        if text == message.link:
            text = ""
        elif text.endswith(SEPARATOR + message.link):
            text = text[: -len(SEPARATOR + message.link)]
    if text:
        fields["message"] = text
    return fields


def _where(url: str) -> str:
    """Scheme and host of a URL: what an error names."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _retry(err: ChannelError) -> dict[str, Any]:
    return {"retry_after": err.retry_after} if isinstance(err, TransientError) else {}


def _remote_id(data: Mapping[str, Any], what: str) -> str:
    remote_id = data.get("id")
    if not isinstance(remote_id, str) or not _ID.fullmatch(remote_id):
        raise TransientError(f"Facebook made the {what} but answered no usable id: {http.snippet(repr(data))}")
    return remote_id


def _checked_id(object_id: str, what: str) -> str:
    """A Graph object id, safe to put in a URL path."""
    if not _ID.fullmatch(object_id):
        raise PermanentError(f"{object_id!r:.60} is not a Facebook {what} id")
    return object_id


def _entries(data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    entries = data.get("data")
    if isinstance(entries, list):
        yield from (e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str))


def _comparable(text: Any) -> str:
    """Text as Facebook may have stored it: line endings unified, ends trimmed."""
    return str(text or "").replace("\r\n", "\n").strip()


def _created(post: Mapping[str, Any]) -> float:
    """When a feed post was made; a missing or odd time counts as recent (match on text)."""
    try:
        return datetime.strptime(str(post.get("created_time")), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return time.time()
