"""A fake Google Business Profile for one account and location, answering as Google's APIs do.

- `POST /token`: the OAuth refresh grant (form), checking client and refresh token; access
  tokens live `token_lifetime` seconds, and an expired or unknown one gets 401 UNAUTHENTICATED.
- `GET|PATCH /v1/locations/{id}`: `readMask` required on GET, `updateMask` on PATCH (only the
  masked fields change; specialHours replaced whole, checked as Google checks it: 400
  INVALID_ARGUMENT with a google.rpc.BadRequest naming the field, for overlaps too).
- `/v4/accounts/{a}/locations/{l}/localPosts`: create (summary at most 1,500 characters,
  EVENT needs its schedule, ALERT its alertType), list (newest first, paged), delete.
- Quotas: at most `edits_per_minute` PATCH/POST/DELETE requests a minute, beyond that 429
  RESOURCE_EXHAUSTED (recorded body, no Retry-After, as Google sends it).
- Modes (one-off with `script`): "quota", "unavailable" (503 JSON), "bad_gateway" (Google's
  HTML 502 page), "expire" (every token expires first), "hang" (held until the mode
  switches), "stall" (the change is made, then the answer is held until the mode switches).

    async with FakeGoogleBusiness() as google:
        ...   # the channel's api_url and token_url point at google.url and google.token_url
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.fakes.common import Fake, drop, options, serve
from tests.support.fakes.google_business_shapes import (
    Invalid,
    bad_gateway,
    invalid,
    recorded,
    regular_hours,
    special_hours,
)

ACCOUNT, LOCATION = "1234567890", "987654321"
CLIENT_ID, CLIENT_SECRET = "123-fake.apps.googleusercontent.com", "GOCSPX-fake-client-secret"
REFRESH_TOKEN = "1//0fake-refresh-token-for-statusd"
MAX_SUMMARY = 1500
TOPICS = ("STANDARD", "EVENT", "OFFER", "ALERT")
MODES = ("ok", "quota", "unavailable", "bad_gateway", "expire", "hang", "stall")
# Monday to Friday 09:00–18:00, Saturday 10:00–16:00, closed on Sunday.
WEEK = {**{d: (9 * 60, 18 * 60) for d in ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")},
        "SATURDAY": (10 * 60, 16 * 60)}


@dataclass
class Location:
    """The location as Google holds it."""

    title: str = "Bibliothèque centrale"
    regular: dict[str, Any] = field(default_factory=lambda: regular_hours(WEEK))
    special: list[dict[str, Any]] = field(default_factory=list)


class FakeGoogleBusiness(Fake):
    """Google's token endpoint, Business Information v1 locations and v4 local posts, for one location."""

    MODES = MODES
    KIND = "Google Business Profile"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, mode: str = "ok", delay: float = 0.0,
                 token_lifetime: float = 3599.0, edits_per_minute: int | None = None, log: Path | None = None) -> None:
        self.host, self.port = host, port
        self.location = Location()
        self.posts: dict[str, dict[str, Any]] = {}  # name → LocalPost, in creation order
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.tokens: dict[str, float] = {}  # access token → when it expires (monotonic)
        self.token_lifetime = token_lifetime
        self.edits_per_minute = edits_per_minute
        self._edits: deque[float] = deque()
        self._ids = itertools.count(1001)
        self._setup(mode, delay, log)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def periods(self) -> list[dict[str, Any]]:
        """The special-hour periods as Google holds them now."""
        return [dict(p) for p in self.location.special]

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401 UNAUTHENTICATED)."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "posts": len(self.posts), "periods": len(self.location.special)}

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_route("*", "/v1/locations/{location}", self._guarded(self._location))
        base = "/v4/accounts/{account}/locations/{location}/localPosts"
        app.router.add_route("*", base, self._guarded(self._posts))
        app.router.add_route("*", base + "/{post}", self._guarded(self._post))
        app.router.add_get("/_fake/mode", self._fake_state)
        app.router.add_post("/_fake/mode", self._fake_control)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(("POST", "/token"))
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type",
                                      "error_description": "Invalid grant_type: "}, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return recorded("invalid_client")
        if form.get("refresh_token") != REFRESH_TOKEN:
            return recorded("invalid_grant")
        token = f"ya29.fake-{next(self._ids)}"
        self.tokens[token] = time.monotonic() + self.token_lifetime
        return web.json_response({"access_token": token, "expires_in": int(self.token_lifetime),
                                  "scope": "https://www.googleapis.com/auth/business.manage",
                                  "token_type": "Bearer"})

    def _guarded(self, handler: Any) -> Any:
        """A handler behind the mode, the bearer token and the edit quota."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            try:
                body = await request.json() if request.can_read_body else None
            except ValueError:
                return invalid("", "Invalid JSON payload received.")
            mode = await self._next_mode()
            if mode is None:
                return drop(request)
            if mode == "expire":
                self.expire_tokens()
            early = self._refusal(request, mode)
            if early is not None:
                return early
            answer: web.StreamResponse = await handler(request, body)
            if mode == "stall" and answer.status < 300:
                await self._mode_switch()  # the change is made; the answer waits for a mode switch
            await self._pause()
            return answer

        return guarded

    def _refusal(self, request: web.Request, mode: str) -> web.Response | None:
        if mode == "bad_gateway":
            return bad_gateway()
        if mode == "unavailable":
            return recorded("unavailable")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0.0) <= time.monotonic():
            return recorded("unauthenticated")
        if mode == "quota" or (request.method != "GET" and not self._admit()):
            return recorded("resource_exhausted")
        return None

    def _admit(self) -> bool:
        now = time.monotonic()
        while self._edits and self._edits[0] < now - 60:
            self._edits.popleft()
        if self.edits_per_minute is not None and len(self._edits) >= self.edits_per_minute:
            return False
        self._edits.append(now)
        return True

    async def _location(self, request: web.Request, body: Any) -> web.Response:
        if request.match_info["location"] != LOCATION:
            return recorded("not_found")
        if request.method == "GET":
            mask = request.query.get("readMask")
            if not mask:
                return invalid("read_mask", "Field is required")
            return self._masked(mask)
        if request.method != "PATCH":
            return web.Response(status=405)
        mask = request.query.get("updateMask")
        if not mask:
            return invalid("update_mask", "Field is required")
        if set(mask.split(",")) - {"specialHours", "title"}:
            return invalid("update_mask", f"Invalid field mask: {mask}")
        try:
            periods = special_hours(body)
        except Invalid as err:
            return invalid(err.field, err.description)
        if "specialHours" in mask.split(","):
            self.location.special = periods
        self._notify()
        return self._masked(mask)

    def _masked(self, mask: str) -> web.Response:
        whole: dict[str, Any] = {"name": f"locations/{LOCATION}", "title": self.location.title,
                                 "regularHours": self.location.regular}
        if self.location.special:  # proto3 JSON: an empty message is left out
            whole["specialHours"] = {"specialHourPeriods": self.periods()}
        return web.json_response({k: v for k, v in whole.items() if k in mask.split(",")})

    def _owned(self, request: web.Request) -> bool:
        return (request.match_info["account"], request.match_info["location"]) == (ACCOUNT, LOCATION)

    async def _posts(self, request: web.Request, body: Any) -> web.Response:
        if not self._owned(request):
            return recorded("not_found")
        if request.method == "GET":
            size = min(max(int(request.query.get("pageSize", "20") or 20), 1), 100)
            newest = list(reversed(self.posts.values()))
            start = int(request.query.get("pageToken") or 0)
            page: dict[str, Any] = {"localPosts": newest[start:start + size]} if newest else {}
            if start + size < len(newest):
                page["nextPageToken"] = str(start + size)
            return web.json_response(page)
        if request.method != "POST":
            return web.Response(status=405)
        refusal = _post_refusal(body)
        if refusal is not None:
            return refusal
        number = next(self._ids)
        name = f"accounts/{ACCOUNT}/locations/{LOCATION}/localPosts/{number}"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        post = {**body, "name": name, "createTime": stamp, "updateTime": stamp, "state": "LIVE",
                "searchUrl": f"https://local.google.com/place?id=1&use=posts&lpsid={number}"}
        self.posts[name] = post
        self._log_post(time.time(), "localPosts", name, text=body.get("summary"))
        self._notify()
        return web.json_response(post)

    async def _post(self, request: web.Request, body: Any) -> web.Response:
        name = f"accounts/{ACCOUNT}/locations/{LOCATION}/localPosts/{request.match_info['post']}"
        if not self._owned(request) or name not in self.posts:
            return recorded("not_found")
        if request.method == "GET":
            return web.json_response(self.posts[name])
        if request.method != "DELETE":
            return web.Response(status=405)
        del self.posts[name]
        self._notify()
        return web.json_response({})

    async def wait_for_posts(self, count: int, within: float = 5.0) -> None:
        await self._until(lambda: len(self.posts) >= count, within, lambda: f"{len(self.posts)} of {count} posts")


def _post_refusal(body: Any) -> web.Response | None:
    """Google's 400 for a LocalPost it would not take."""
    if not isinstance(body, dict):
        return invalid("local_post", "Invalid JSON payload received.")
    summary = body.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        return invalid("local_post.summary", "Summary is required.")
    if len(summary) > MAX_SUMMARY:
        return invalid("local_post.summary", f"Summary must be at most {MAX_SUMMARY} characters.")
    topic = body.get("topicType")
    if topic not in TOPICS:
        return invalid("local_post.topic_type", f"Invalid value at 'local_post.topic_type' ({topic!r:.40})")
    event = body.get("event")
    if topic == "EVENT" and not (isinstance(event, dict) and event.get("title") and event.get("schedule")):
        return invalid("local_post.event", "Event title and schedule are required for EVENT posts.")
    if topic == "EVENT" and len(str(event["title"])) > 58:  # type: ignore[index]
        return invalid("local_post.event.title", "Title must be at most 58 characters.")
    if topic == "ALERT" and body.get("alertType") != "COVID_19":
        return invalid("local_post.alert_type", "alert_type is required for ALERT posts.")
    return None


def main(argv: list[str] | None = None) -> None:
    parser: argparse.ArgumentParser = options("google_business", "A fake Google Business Profile.", MODES)
    parser.add_argument("--edits-per-minute", type=int, default=None)
    args = parser.parse_args(argv)
    fake = FakeGoogleBusiness(host=args.host, port=args.port, mode=args.mode, delay=args.delay,
                              edits_per_minute=args.edits_per_minute, log=args.log)
    asyncio.run(serve(fake, fake.token_url))


if __name__ == "__main__":
    main()
