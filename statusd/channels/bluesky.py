"""Bluesky channel: AT Protocol XRPC over aiohttp, one session reused and refreshed."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import regex
import structlog

from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.webhook import retry_after as _retry_after_header
from statusd.compose.message import Message
from statusd.config.options import Duration, Url
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret

log = structlog.get_logger()

DEFAULT_SERVICE = "https://bsky.social"
POST = "app.bsky.feed.post"
LINK = "app.bsky.richtext.facet#link"
# Errors that mean "this access token no longer works": refresh, then try once more.
_TOKEN_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired"}
_GRAPHEME = regex.compile(r"\X")
# A URL runs to the next space; trailing punctuation belongs to the sentence.
_URL = re.compile(r"https?://[^\s<>\"]+")
_TRAILING = ".,;:!?'\"»”’)]}"
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")


class _Failed(Exception):
    """An XRPC error answer, before it is classified for the outbox."""

    def __init__(self, status: int, error: str, text: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status} {error}: {text}" if error else f"HTTP {status}: {text}")
        self.status, self.error, self.text, self.headers = status, error, text, headers


def graphemes(text: str) -> int:
    """User-perceived characters (Unicode extended grapheme clusters), as Bluesky counts."""
    return len(_GRAPHEME.findall(text))


def link_facets(text: str) -> list[dict[str, Any]]:
    """A link facet for every URL in `text`, with the UTF-8 byte offsets Bluesky expects."""
    facets = []
    for match in _URL.finditer(text):
        url = _trim(match.group())
        start = len(text[: match.start()].encode())
        facets.append({
            "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
            "features": [{"$type": LINK, "uri": url}],
        })
    return facets


def _trim(url: str) -> str:
    while url and url[-1] in _TRAILING and not (url[-1] == ")" and "(" in url):
        url = url[:-1]
    return url


class Bluesky:
    """Posts to one Bluesky account with an app password, over one reused session."""

    kind: ClassVar[str] = "bluesky"
    honours_idempotency: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Options:
        """The PDS, the account's handle and app password, and an optional timeout."""

        handle: str
        app_password: Secret
        service: Url | None = None
        timeout: Duration | None = None
    max_graphemes: ClassVar[int] = 300
    max_bytes: ClassVar[int] = 3000

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        self.name = config.name
        self.language = config.language
        self.max_chars: int | None = self.max_graphemes
        options: Bluesky.Options = config.options
        self._service = (options.service or DEFAULT_SERVICE).rstrip("/")
        self._handle: str = options.handle.lstrip("@")
        self._password = options.app_password
        timeout = options.timeout or delivery.timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self._auth: dict[str, str] | None = None  # accessJwt, refreshJwt, did, handle
        # One session for the channel's life: createSession is limited to 30 per 5 minutes.
        self._lock = asyncio.Lock()

    def measure(self, text: str) -> int:
        # Two limits, one number: 300 graphemes, and 3000 UTF-8 bytes (which combining marks
        # can reach first); measure <= 300 exactly when both hold.
        per_grapheme = self.max_bytes // self.max_graphemes
        return max(graphemes(text), -(-len(text.encode()) // per_grapheme))

    async def open(self) -> None:
        await self._session()

    async def whoami(self) -> str:
        await self._session()
        data = await self._xrpc("GET", "com.atproto.server.getSession")
        return f"@{data.get('handle', self._handle)} ({data.get('did', '?')})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        record: dict[str, Any] = {
            "$type": POST,
            "text": message.text,
            "createdAt": _now(),
            "langs": [message.language],
        }
        if facets := link_facets(message.text):
            record["facets"] = facets
        if reply_to is not None:
            record["reply"] = {
                "root": _strong_ref(reply_to.root), "parent": _strong_ref(reply_to.parent),
            }
        auth = await self._session()
        body = {"repo": auth["did"], "collection": POST, "record": record}
        data = await self._xrpc("POST", "com.atproto.repo.createRecord", body)
        uri, cid = data.get("uri"), data.get("cid")
        if not isinstance(uri, str) or not isinstance(cid, str):
            raise TransientError(f"{self._where()} answered createRecord without uri and cid")
        return self._sent(uri, cid)

    async def delete(self, remote_id: str) -> None:
        repo, collection, rkey = _at_uri(_strong_ref(remote_id)["uri"])
        body = {"repo": repo, "collection": collection, "rkey": rkey}
        await self._xrpc("POST", "com.atproto.repo.deleteRecord", body)

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        auth = await self._session()
        params = {"repo": auth["did"], "collection": POST, "limit": "25"}
        data = await self._xrpc("GET", "com.atproto.repo.listRecords", params=params)
        for item in data.get("records") or []:
            value = item.get("value") if isinstance(item, dict) else None
            if isinstance(value, dict) and value.get("text") == message.text and _after(value, since):
                return self._sent(str(item.get("uri")), str(item.get("cid")))
        return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- session -------------------------------------------------------------------------------

    async def _session(self) -> dict[str, str]:
        """The current session, created on first use."""
        async with self._lock:
            if self._auth is None:
                await self._create_session()
            assert self._auth is not None
            return self._auth

    async def _renew(self, stale: str) -> None:
        """Refresh after `stale` was refused; create a new session only if refreshing fails."""
        async with self._lock:
            if self._auth is None or self._auth["accessJwt"] != stale:
                return  # another task renewed it meanwhile
            try:
                data = await self._call("POST", "com.atproto.server.refreshSession",
                                        token=self._auth["refreshJwt"])
                self._keep(data)
                log.info("bluesky_session_refreshed", channel=self.name)
            except _Failed as err:
                if err.status >= 500 or err.status == 429:
                    raise self._classify(err) from err
                log.info("bluesky_refresh_refused", channel=self.name, error=err.error)
                await self._create_session()

    async def _create_session(self) -> None:
        body = {"identifier": self._handle, "password": self._password.read() or ""}
        try:
            data = await self._call("POST", "com.atproto.server.createSession", body, token=None)
        except _Failed as err:
            if err.status in (400, 401, 403):
                raise PermanentError(
                    f"{self._where()} refused to log in as {self._handle} ({err.error}: "
                    f"{err.text}); check the handle and create a new app password "
                    f"in {self._password.describe()}"
                ) from err
            raise self._classify(err) from err
        self._keep(data)
        log.info("bluesky_session_created", channel=self.name, did=data.get("did"))

    def _keep(self, data: Any) -> None:
        try:
            self._auth = {k: str(data[k]) for k in ("accessJwt", "refreshJwt", "did")}
        except (KeyError, TypeError) as err:
            raise TransientError(f"{self._where()} answered without a session") from err
        self._auth["handle"] = str(data.get("handle") or self._handle)

    # -- requests ------------------------------------------------------------------------------

    async def _xrpc(self, method: str, nsid: str, body: Any = None,
                    params: Mapping[str, str] | None = None) -> Any:
        """An authenticated call: on a refused token, renew the session and try once more."""
        for attempt in (1, 2):
            token = (await self._session())["accessJwt"]
            try:
                return await self._call(method, nsid, body, token=token, params=params)
            except _Failed as err:
                if attempt == 1 and err.status in (400, 401) and err.error in _TOKEN_ERRORS:
                    await self._renew(token)
                    continue
                raise self._classify(err) from err
        raise AssertionError("unreachable")

    async def _call(self, method: str, nsid: str, body: Any = None, *, token: str | None,
                    params: Mapping[str, str] | None = None) -> Any:
        """One XRPC request; the parsed JSON answer, or _Failed."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"User-Agent": "statusd", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http.request(
                method, f"{self._service}/xrpc/{nsid}", json=body, params=params, headers=headers
            ) as response:
                text = await response.text(errors="replace")
                return _answer(response.status, response.headers, text)
        except TimeoutError as err:
            waited = f"{self._timeout.total:g} s"
            raise TransientError(f"no answer from {self._where()} within {waited}") from err
        except aiohttp.ClientError as err:
            raise TransientError(f"cannot reach {self._where()}: {err}") from err

    def _classify(self, err: _Failed) -> TransientError | PermanentError:
        reason = f"{self._where()}: {err}"
        # A 2xx that cannot be read may still have posted: the outbox looks before retrying.
        if err.status < 300 or err.status in (408, 429) or err.status >= 500:
            return TransientError(reason, retry_after=_retry_after(err.headers))
        if err.error in _TOKEN_ERRORS:
            return PermanentError(f"{reason}; the session was refused again after renewing it")
        return PermanentError(reason)

    def _sent(self, uri: str, cid: str) -> Sent:
        _, _, rkey = _at_uri(uri)
        who = self._auth["handle"] if self._auth else self._handle
        return Sent(remote_id=f"{uri}|{cid}", url=f"https://bsky.app/profile/{who}/post/{rkey}")

    def _where(self) -> str:
        parts = urlsplit(self._service)
        return f"Bluesky at {parts.scheme}://{parts.netloc}"


def _answer(status: int, headers: Mapping[str, str], text: str) -> Any:
    """The JSON object of a success; _Failed for an error, with or without a JSON body."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = None
    if status < 300 and isinstance(data, dict):
        return data
    if status < 300:
        raise _Failed(status, "", f"the answer is not a JSON object: {text.strip()[:120]}", headers)
    if isinstance(data, dict):
        raise _Failed(status, str(data.get("error") or ""), str(data.get("message") or ""), headers)
    raise _Failed(status, "", text.strip()[:200], headers)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from Retry-After, else until RateLimit-Reset (epoch seconds)."""
    wait = _retry_after_header(headers)
    reset = (headers.get("RateLimit-Reset") or "").strip()
    if wait is None and _NUMBER.fullmatch(reset):
        wait = max(0.0, float(reset) - time.time())
    return wait


def _now() -> str:
    """The time as AT Protocol datetimes are usually written: UTC, milliseconds, "Z"."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _strong_ref(remote_id: str) -> dict[str, str]:
    uri, _, cid = remote_id.partition("|")
    if not uri.startswith("at://") or not cid:
        raise PermanentError(f"{remote_id!r} is not a Bluesky post id (expected 'at://...|cid')")
    return {"uri": uri, "cid": cid}


def _at_uri(uri: str) -> tuple[str, str, str]:
    """at://REPO/COLLECTION/RKEY → (repo, collection, rkey)."""
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
        raise PermanentError(f"{uri!r} is not an at:// URI of a record")
    return parts[0], parts[1], parts[2]


def _after(record: dict[str, Any], since: datetime | None) -> bool:
    """Whether a record was made at or after `since` (a minute's grace for clock skew)."""
    if since is None:
        return True
    try:
        made = datetime.fromisoformat(str(record.get("createdAt")).replace("Z", "+00:00"))
    except ValueError:
        return True
    return made.timestamp() >= since.timestamp() - 60
