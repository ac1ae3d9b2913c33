"""A Bluesky PDS that answers XRPC like the real one (bodies recorded from @atproto/pds in
tests/support/fakes/responses/bluesky/), keeps the posts it is given, and fails on demand.

In a test:

    async with FakeBluesky(handle="library.bib.test", password="app-pass") as pds:
        ...                          # point the channel's `service` at pds.url
        assert pds.session_creates == 1

As its own process (prints its base URL as the first line of stdout; `GET /_fake/posts`
answers the stored posts; `POST /_fake/control {"mode": ..., "delay": ...}` switches them):

    python -m tests.support.fakes.bluesky --port 0 --handle library.bib.test --password P [--delay 0.15]

Stricter than the real server in two ways, to catch a wrong client: a link facet must span
exactly the bytes of its URL, and a reply must name a post it holds (uri and cid).

A create that names its `rkey` gets that key (a TID, checked as the real server checks it);
one on a key that is taken answers 500 InternalServerError, as @atproto/pds does (its MST
refuses a second value at a key). Mode "stall" holds a create for `stall` seconds, then
applies it (unless its key was taken meanwhile): a look-up during the stall misses it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
from aiohttp import web

from statusd.channels.bluesky_keys import tid_time
from tests.support.fakes.common import Fake, drop, options, serve

RESPONSES = Path(__file__).resolve().parent / "responses" / "bluesky"
POST = "app.bsky.feed.post"
CREATE_RECORD = "com.atproto.repo.createRecord"
LINK = "app.bsky.richtext.facet#link"
MODES = (
    "ok",         # answer as the real server does
    "ratelimit",  # 429 RateLimitExceeded with RateLimit-* and Retry-After headers
    "error500",   # 500 InternalServerError (JSON)
    "html",       # 502 with an HTML page, as a proxy in front of the PDS answers
    "garbage",    # 200 with a body that is not JSON
    "hang",       # no answer until the mode is switched or the fake stops
    "stall",      # a create is held `stall` seconds, then applied and answered (too late)
)
SESSION_LIMIT = 30  # createSession calls per SESSION_WINDOW seconds, as on bsky.social
SESSION_WINDOW = 300
_HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
_GRAPHEME = regex.compile(r"\X")


def recorded(name: str) -> tuple[int, dict[str, Any]]:
    """A recorded answer: its status and (a fresh copy of) its body."""
    data = json.loads((RESPONSES / f"{name}.json").read_text(encoding="utf-8"))
    return int(data["status"]), data["body"]


@dataclass
class StoredPost:
    """A post as the fake keeps it."""

    uri: str
    cid: str
    rkey: str
    record: dict[str, Any]
    deleted: bool = False


@dataclass
class _Tokens:
    access: dict[str, bool] = field(default_factory=dict)   # token → expired
    refresh: dict[str, bool] = field(default_factory=dict)


class FakeBluesky(Fake):
    """An aiohttp app on 127.0.0.1 holding one account and its posts."""

    MODES = MODES
    KIND = "fake"

    def __init__(self, handle: str = "library.bib.test", password: str = "app-pass-1234",
                 *, host: str = "127.0.0.1", port: int = 0, mode: str = "ok",
                 retry_after: int = 7, delay: float = 0.0, log: Path | None = None) -> None:
        self.handle, self.password = handle, password
        self.did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        self.host, self.port = host, port
        self.retry_after = retry_after
        self.expired_status = 400  # bsky.social answers ExpiredToken with 400; some proxies 401
        self.stored: list[StoredPost] = []
        self.session_creates = 0
        self.refreshes = 0
        self.calls: list[str] = []  # NSIDs in arrival order
        self.stall = 30.0  # seconds a create is held in mode "stall"
        self.stalled = 0   # creates held so far
        self.unstalled = 0  # held creates since applied (or refused) and answered
        self._tokens = _Tokens()
        self._session_times: deque[float] = deque()
        self._setup(mode, delay, log)

    # -- what tests use ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def posts(self) -> list[StoredPost]:
        """Posts that exist now (not deleted), oldest first."""
        return [p for p in self.stored if not p.deleted]

    @property
    def deleted(self) -> list[str]:
        return [p.uri for p in self.stored if p.deleted]

    def expire_access(self) -> None:
        """Every access token issued so far now answers ExpiredToken."""
        self._tokens.access = dict.fromkeys(self._tokens.access, True)

    def expire_refresh(self) -> None:
        """Every refresh token issued so far now answers ExpiredToken."""
        self._tokens.refresh = dict.fromkeys(self._tokens.refresh, True)

    def post(self, text: str, rkey: str | None = None, **extra: Any) -> StoredPost:
        """Store a post as if made earlier (another client, or a send before a crash)."""
        record = {"$type": POST, "text": text, "createdAt": _now(), **extra}
        return self._store(record, rkey)

    # -- dispatch ------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_fake/posts", self._posts)
        app.router.add_get("/_fake/control", self._fake_state)
        app.router.add_post("/_fake/control", self._fake_control)
        app.router.add_route("*", "/xrpc/{nsid}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        nsid = request.match_info["nsid"]
        self.calls.append(nsid)
        mode = await self._next_mode()
        if mode is None:
            return drop(request)
        if mode == "stall" and nsid == CREATE_RECORD:
            self.stalled += 1
            await request.read()  # received in full, as the real server would have it
            await asyncio.sleep(self.stall)
            answer = await self._create_record(request)
            self.unstalled += 1
            return answer
        elif mode not in ("ok", "stall"):
            return self._failure(mode)
        handler = _ROUTES.get((request.method, nsid))
        if handler is None:
            return _json(400, {"error": "InvalidRequest", "message": f"XRPCNotSupported: {nsid}"})
        answer = await handler(self, request)
        if nsid == CREATE_RECORD:
            await self._pause()
        return answer

    def _failure(self, mode: str) -> web.Response:
        if mode == "ratelimit":
            return self._rate_limited(time.time() + self.retry_after, "3000;w=300")
        if mode == "error500":
            return _json(*recorded("internal_error"))
        if mode == "html":
            return web.Response(status=502, text=_HTML_502, content_type="text/html")
        return web.Response(status=200, text="<html>Service temporarily unavailable</html>",
                            content_type="text/html")

    def _rate_limited(self, reset: float, policy: str) -> web.Response:
        headers = {
            "RateLimit-Limit": policy.split(";")[0], "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(reset)), "RateLimit-Policy": policy,
            "Retry-After": str(max(0, int(reset - time.time()))),
        }
        return _json(*recorded("rate_limited"), headers=headers)

    # -- sessions ------------------------------------------------------------------------------

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.session_creates += 1
        now = time.time()
        while self._session_times and self._session_times[0] <= now - SESSION_WINDOW:
            self._session_times.popleft()
        if len(self._session_times) >= SESSION_LIMIT:
            return self._rate_limited(self._session_times[0] + SESSION_WINDOW, "30;w=300")
        self._session_times.append(now)
        known = body.get("identifier") in (self.handle, self.did)
        if not known or body.get("password") != self.password:
            return _json(*recorded("auth_required"))
        return self._new_session("create_session")

    async def _refresh_session(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        if token not in self._tokens.refresh:
            return _json(*recorded("invalid_token"))
        if self._tokens.refresh.pop(token):
            return self._expired()
        self.refreshes += 1
        return self._new_session("create_session")

    def _new_session(self, name: str) -> web.Response:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._tokens.access[access] = False
        self._tokens.refresh[refresh] = False
        status, body = recorded(name)
        body.update(accessJwt=access, refreshJwt=refresh, did=self.did, handle=self.handle)
        return _json(status, body)

    def _expired(self) -> web.Response:
        _, body = recorded("expired_token")
        return _json(self.expired_status, body)

    def _refused(self, request: web.Request) -> web.Response | None:
        """The error answer for a request without a valid access token, else None."""
        token = _bearer(request)
        if token is None:
            return _json(*recorded("auth_missing"))
        if token not in self._tokens.access:
            return _json(*recorded("invalid_token"))
        return self._expired() if self._tokens.access[token] else None

    async def _get_session(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        status, body = recorded("get_session")
        body.update(did=self.did, handle=self.handle)
        return _json(status, body)

    # -- records -------------------------------------------------------------------------------

    async def _create_record(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        body = await _body(request)
        if body.get("repo") not in (self.did, self.handle):
            return _json(*recorded("account_not_found"))
        record = body.get("record")
        if body.get("collection") != POST or not isinstance(record, dict):
            return _invalid("this fake stores app.bsky.feed.post records only")
        if problem := self._check_post(record):
            return problem
        rkey = body.get("rkey")
        if rkey is not None and (not isinstance(rkey, str) or tid_time(rkey) is None):
            return _invalid(f"Invalid record key for {POST}: must be a valid TID")
        if rkey is not None and any(p.rkey == rkey for p in self.stored):
            return _json(*recorded("internal_error"))  # "There is already a value at key"
        stored = self._store(record, rkey)
        self._log_post(time.time(), request.path, stored.uri)
        status, answer = recorded("create_record")
        answer.update(uri=stored.uri, cid=stored.cid)
        return _json(status, answer)

    def _check_post(self, record: dict[str, Any]) -> web.Response | None:
        text = record.get("text")
        if record.get("$type") != POST or not isinstance(text, str):
            return _invalid("Invalid app.bsky.feed.post record: Record/text must be a string")
        if not isinstance(record.get("createdAt"), str):
            return _invalid('Invalid app.bsky.feed.post record: Record must have the property '
                            '"createdAt"')
        size, count = len(text.encode()), len(_GRAPHEME.findall(text))
        for name, got, limit in (("string_too_big", size, 3000), ("grapheme_too_big", count, 300)):
            if got > limit:
                status, answer = recorded(name)
                answer["message"] = answer["message"].replace("{got}", str(got))
                return _json(status, answer)
        problem = _facet_problem(text, record.get("facets"))
        problem = problem or self._reply_problem(record.get("reply"))
        return _invalid(problem) if problem else None

    def _reply_problem(self, reply: Any) -> str | None:
        if reply is None:
            return None
        refs = {(p.uri, p.cid) for p in self.stored}
        for part in ("root", "parent"):
            ref = reply.get(part) if isinstance(reply, dict) else None
            if not isinstance(ref, dict) or (ref.get("uri"), ref.get("cid")) not in refs:
                return f"(fake) reply.{part} {ref!r} is not a post this server holds"
        return None

    def _store(self, record: dict[str, Any], rkey: str | None = None) -> StoredPost:
        rkey = rkey or f"3n{int(time.time() * 1000):x}{len(self.stored):04x}"
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode() + rkey.encode())
        stored = StoredPost(f"at://{self.did}/{POST}/{rkey}", "bafyrei" + digest.hexdigest()[:52],
                            rkey, record)
        self.stored.append(stored)
        return stored

    async def _delete_record(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        body = await _body(request)
        if body.get("repo") not in (self.did, self.handle):
            return _json(*recorded("account_not_found"))
        for stored in self.stored:
            if stored.rkey == body.get("rkey") and body.get("collection") == POST:
                stored.deleted = True
        return _json(*recorded("delete_record"))  # deleting a missing record is not an error

    async def _list_records(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("repo") not in (self.did, self.handle):
            return _invalid(f"Could not find repo: {query.get('repo')}")
        limit = min(100, int(query.get("limit", "50")))
        newest = [p for p in reversed(self.posts) if query.get("collection") == POST][:limit]
        records = [{"uri": p.uri, "cid": p.cid, "value": p.record} for p in newest]
        answer: dict[str, Any] = {"records": records}
        if records:
            answer["cursor"] = newest[-1].rkey
        return _json(200, answer)

    async def _get_record(self, request: web.Request) -> web.Response:
        for post in self.posts:
            if post.rkey == request.query.get("rkey"):
                return _json(200, {"uri": post.uri, "cid": post.cid, "value": post.record})
        status, answer = recorded("record_not_found")
        query = request.query
        uri = f"at://{query.get('repo')}/{query.get('collection')}/{query.get('rkey')}"
        answer["message"] = answer["message"].replace("{uri}", uri)
        return _json(status, answer)

    # -- control -------------------------------------------------------------------------------

    async def _posts(self, request: web.Request) -> web.Response:
        return _json(200, [
            {"uri": p.uri, "cid": p.cid, "record": p.record, "deleted": p.deleted}
            for p in self.stored
        ])

    def stats(self) -> dict[str, Any]:
        return {"mode": self.mode, "posts": len(self.posts),
                "session_creates": self.session_creates, "refreshes": self.refreshes}

    def _apply_own(self, change: dict[str, Any]) -> None:
        if change.get("expire") == "access":
            self.expire_access()
        if "stall" in change:
            self.stall = float(change["stall"])


_ROUTES = {
    ("POST", "com.atproto.server.createSession"): FakeBluesky._create_session,
    ("POST", "com.atproto.server.refreshSession"): FakeBluesky._refresh_session,
    ("GET", "com.atproto.server.getSession"): FakeBluesky._get_session,
    ("POST", CREATE_RECORD): FakeBluesky._create_record,
    ("POST", "com.atproto.repo.deleteRecord"): FakeBluesky._delete_record,
    ("GET", "com.atproto.repo.listRecords"): FakeBluesky._list_records,
    ("GET", "com.atproto.repo.getRecord"): FakeBluesky._get_record,
}


def _facet_problem(text: str, facets: Any) -> str | None:
    """Why a link facet does not mark its URL's exact UTF-8 bytes, or None."""
    data = text.encode()
    for facet in facets or []:
        index = facet.get("index", {})
        start, end = index.get("byteStart"), index.get("byteEnd")
        for feature in facet.get("features", []):
            if feature.get("$type") != LINK:
                continue
            uri = str(feature.get("uri"))
            numbers = isinstance(start, int) and isinstance(end, int)
            if not (numbers and 0 <= start < end <= len(data)):
                return f"(fake) facet bytes {start}..{end} are outside the text"
            if data[start:end] != uri.encode():
                return f"(fake) facet bytes {start}..{end} are {data[start:end]!r}, not {uri!r}"
    return None


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        value = json.loads(await request.read() or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _invalid(message: str) -> web.Response:
    return _json(400, {"error": "InvalidRequest", "message": message})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


# -- standalone process ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = options("bluesky", "A fake Bluesky PDS.", MODES)
    parser.add_argument("--handle", default="library.bib.test")
    parser.add_argument("--password", default="app-pass-1234", help="the app password it accepts")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    asyncio.run(serve(FakeBluesky(args.handle, args.password, host=args.host, port=args.port,
                                  mode=args.mode, delay=args.delay, log=args.log)))


if __name__ == "__main__":
    main()
