"""Bluesky channel: AT Protocol XRPC over aiohttp, one session reused, refreshed and kept.

What the servers do, and where it was seen:
- Record keys (the real @atproto/pds, tests/test_bluesky_pds.py): createRecord takes the
  `rkey` we choose, a TID checked by the post lexicon; a second create on a taken key
  answers 500 InternalServerError (its MST refuses a second value at a key). So each
  delivery's key is derived from its creation time and idempotency key (bluesky_keys),
  any server error on a create is followed by getRecord on that key, and a retry after
  a crash, a timeout or a stall either makes the record or finds it. Nothing is ever
  matched on text: routine wording repeats.
- A stalled PDS (SIGSTOP, then SIGCONT) still applies the creates queued meanwhile, after
  the client gave up; a look-up during the stall misses them. The key makes that harmless.
- Sessions: createSession is limited (30 per 5 minutes, 300 a day per handle on
  bsky.social), so the session is kept in the state directory and refreshed with
  refreshSession; an expired access token answers 400 ExpiredToken (some proxies 401).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import structlog

from statusd.channels import http
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.bluesky_keys import Kept, SessionFile, tid
from statusd.channels.bluesky_text import graphemes, link_facets
from statusd.channels.bluesky_xrpc import (
    TOKEN_ERRORS,
    Failed,
    answer,
    at_now,
    at_uri,
    classify,
    may_exist,
    retry_after,
    strong_ref,
)
from statusd.channels.options import BlueskyOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

__all__ = ["Bluesky", "graphemes", "link_facets"]

log = structlog.get_logger()

DEFAULT_SERVICE = "https://bsky.social"
POST = "app.bsky.feed.post"


class Bluesky(http.HttpChannel):
    """Posts to one Bluesky account with an app password, over one reused session."""

    kind: ClassVar[str] = "bluesky"
    # The record key is the delivery's own: repeating a create can never make a second post.
    honours_idempotency: ClassVar[bool] = True

    Options = BlueskyOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    max_graphemes: ClassVar[int] = 300
    max_bytes: ClassVar[int] = 3000

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        super().__init__(config, delivery, max_chars=self.max_graphemes)
        options: BlueskyOptions = config.options
        self._service = (options.service or DEFAULT_SERVICE).rstrip("/")
        self._handle: str = options.handle.lstrip("@")
        self._password = options.app_password
        self._auth: dict[str, str] | None = None  # accessJwt, refreshJwt, did, handle
        # One session for the channel's life, kept across restarts: createSession is limited.
        self._lock = asyncio.Lock()
        self._file: SessionFile | None = None
        self._loaded = False
        self._create_after = 0.0

    def keep_sessions(self, directory: Path) -> None:
        """Keep the session in `directory` (the state directory), so a restart reuses it."""
        self._file = SessionFile(directory / "sessions" / f"bluesky-{self.name}.json")

    def measure(self, text: str) -> int:
        # Two limits, one number: 300 graphemes, and 3000 UTF-8 bytes (which combining marks
        # can reach first); measure <= 300 exactly when both hold.
        per_grapheme = self.max_bytes // self.max_graphemes
        return max(graphemes(text), -(-len(text.encode()) // per_grapheme))

    async def open(self) -> None:
        """Log in, or check the session kept from the last start (refreshing it if it expired)."""
        await self._xrpc("GET", "com.atproto.server.getSession")

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
            "createdAt": at_now(),
            "langs": [message.language],
        }
        if facets := link_facets(message.text):
            record["facets"] = facets
        if reply_to is not None:
            record["reply"] = {
                "root": strong_ref(reply_to.root), "parent": strong_ref(reply_to.parent),
            }
        rkey = tid(created or datetime.now(UTC), idempotency_key)
        auth = await self._session()
        body = {"repo": auth["did"], "collection": POST, "rkey": rkey, "record": record}
        try:
            data = await self._xrpc("POST", "com.atproto.repo.createRecord", body)
        except (TransientError, PermanentError) as err:
            if isinstance(err.__cause__, Failed) and may_exist(err.__cause__):
                if (found := await self._get(rkey, message.text)) is not None:
                    return found  # an earlier attempt made it: the PDS refused the second value
            raise
        uri, cid = data.get("uri"), data.get("cid")
        if not isinstance(uri, str) or not isinstance(cid, str):
            raise TransientError(f"{self._where()} answered createRecord without uri and cid")
        return self._sent(uri, cid)

    async def delete(self, remote_id: str) -> None:
        repo, collection, rkey = at_uri(strong_ref(remote_id)["uri"])
        body = {"repo": repo, "collection": collection, "rkey": rkey}
        await self._xrpc("POST", "com.atproto.repo.deleteRecord", body)

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        """The record under this delivery's own key (never a match on text); None if not made.

        `since` is the delivery's creation time, from which its key is derived;
        without it the key cannot be known and nothing is claimed.
        """
        if since is None:
            return None
        found = await self._get(tid(since, idempotency_key), message.text)
        return None if found is None or found.remote_id in exclude else found

    async def _get(self, rkey: str, text: str) -> Sent | None:
        """getRecord on `rkey`: the post, None if there is none; a different text is a key collision."""
        auth = await self._session()
        params = {"repo": auth["did"], "collection": POST, "rkey": rkey}
        try:
            data = await self._xrpc("GET", "com.atproto.repo.getRecord", params=params)
        except PermanentError as err:
            if isinstance(err.__cause__, Failed) and err.__cause__.error == "RecordNotFound":
                return None
            raise
        value = data.get("value")
        if not isinstance(value, dict) or value.get("text") != text:
            raise PermanentError(f"{self._where()} holds another post under record key {rkey}; "
                                 "this delivery cannot be told apart from it")
        return self._sent(str(data.get("uri")), str(data.get("cid")))

    # -- session -------------------------------------------------------------------------------

    async def _session(self) -> dict[str, str]:
        """The current session: the one kept from an earlier start, else a new one."""
        async with self._lock:
            if self._auth is None and not self._loaded:
                await self._load()
            if self._auth is None:
                await self._create_session()
            assert self._auth is not None
            return self._auth

    async def _load(self) -> None:
        self._loaded = True
        kept = await self._file.load(self._service, self._handle) if self._file else None
        if kept is None:
            return
        self._create_after = kept.create_after
        if kept.access and kept.refresh and kept.did:
            self._auth = {"accessJwt": kept.access, "refreshJwt": kept.refresh, "did": kept.did,
                          "handle": kept.shown_handle or self._handle}
            log.info("bluesky_session_reused", channel=self.name, did=kept.did)

    async def _save(self) -> None:
        if self._file is None:
            return
        auth = self._auth or {}
        await self._file.save(Kept(
            self._service, self._handle, auth.get("accessJwt", ""), auth.get("refreshJwt", ""),
            auth.get("did", ""), auth.get("handle", ""), self._create_after))

    async def _renew(self, stale: str) -> None:
        """Refresh after `stale` was refused; create a new session only if refreshing fails."""
        async with self._lock:
            if self._auth is None or self._auth["accessJwt"] != stale:
                return  # another task renewed it meanwhile
            try:
                data = await self._call("POST", "com.atproto.server.refreshSession",
                                        token=self._auth["refreshJwt"])
            except Failed as err:
                if err.status >= 500 or err.status == 429:
                    raise classify(err, self._where()) from err
                log.info("bluesky_refresh_refused", channel=self.name, error=err.error)
                self._auth = None
                await self._create_session()
                return
            self._keep(data)
            await self._save()
            log.info("bluesky_session_refreshed", channel=self.name)

    async def _create_session(self) -> None:
        if (wait := self._create_after - time.time()) > 0:
            raise TransientError(f"{self._where()} limits logins; statusd logs in again in "
                                 f"{wait:.0f} s", retry_after=wait)
        body = {"identifier": self._handle, "password": self._password.read() or ""}
        try:
            data = await self._call("POST", "com.atproto.server.createSession", body, token=None)
        except Failed as err:
            if err.status == 429:
                self._create_after = time.time() + (retry_after(err.headers) or 300.0)
                await self._save()
            if err.status in (400, 401, 403):
                raise PermanentError(
                    f"{self._where()} refused to log in as {self._handle} ({err.error}: "
                    f"{err.text}); check the handle and create a new app password "
                    f"in {self._password.describe()}"
                ) from err
            raise classify(err, self._where()) from err
        self._keep(data)
        self._create_after = 0.0
        await self._save()
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
            except Failed as err:
                if attempt == 1 and err.status in (400, 401) and err.error in TOKEN_ERRORS:
                    await self._renew(token)
                    continue
                raise classify(err, self._where()) from err
        raise AssertionError("unreachable")

    async def _call(self, method: str, nsid: str, body: Any = None, *, token: str | None,
                    params: Mapping[str, str] | None = None) -> Any:
        """One XRPC request; the parsed JSON answer, or Failed."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with http.mapped(self._where(), self._seconds):
            async with self._http_session().request(
                method, f"{self._service}/xrpc/{nsid}", json=body, params=params, headers=headers
            ) as response:
                text = await response.text(errors="replace")
        return answer(response.status, response.headers, text)

    def _sent(self, uri: str, cid: str) -> Sent:
        _, _, rkey = at_uri(uri)
        who = self._auth["handle"] if self._auth else self._handle
        return Sent(remote_id=f"{uri}|{cid}", url=f"https://bsky.app/profile/{who}/post/{rkey}")

    def _where(self) -> str:
        parts = urlsplit(self._service)
        return f"Bluesky at {parts.scheme}://{parts.netloc}"

