"""A fake Facebook Graph API for one page: feed, comments and deletions, answered as Graph does.

Error bodies are the recorded ones in responses/facebook/*.json; every answer carries the
usage headers (X-App-Usage, X-Page-Usage, X-Business-Use-Case-Usage). Like Facebook it checks
the token, refuses a duplicate of a recent post (#506) and a message over 63,206 characters.

In a test:

    async with FakeGraph(token="page-token", page_id="1234") as graph:
        ...                               # point the channel's graph_url at graph.graph_url
        graph.mode = "throttle_page"      # or graph.script("server_error") for one answer

As its own process (prints its base URL as the first line of stdout, stops on SIGTERM/SIGINT):

    python -m tests.support.fakes.facebook --port 0 --token T --page-id 1234 [--delay 0.15]

`GET /_fake/posts` answers every stored post and comment as a JSON list;
`POST /_fake/mode {"mode": ..., "delay": ...}` switches a running process. Graph paths work with or
without a version prefix (/v21.0/me and /me).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.fakes.common import Fake, drop, options, serve

__all__ = ["ERROR_MODES", "MAX_CHARS", "MODES", "FakeGraph", "Request", "StoredPost"]

RESPONSES = Path(__file__).resolve().parent / "responses" / "facebook"
MAX_CHARS = 63_206
# Modes answered with the recorded error of the same name.
ERROR_MODES = (
    "expired", "password_changed", "app_removed", "invalid_token",      # 190
    "policy_blocked", "already_posted", "duplicate",                    # 368, 506
    "throttle_app", "throttle_user", "throttle_page", "throttle_api",   # 4, 17, 32, 613
    "unknown", "unexpected",                                            # 1, 2
    "permission", "permission_200",                                     # 10, 200
)
MODES = (
    "ok",
    *ERROR_MODES,
    "server_error",     # 500 with Facebook's HTML error page
    "html",             # 200 with an HTML page (a captive portal or a broken proxy)
    "hang",             # no answer until the mode is switched or the fake stops
    "drop_after_post",  # a POST is stored, then the connection closes unanswered
)
THROTTLE_MODES = ("throttle_app", "throttle_user", "throttle_page", "throttle_api")
USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage", "X-Business-Use-Case-Usage")
_VERSION = re.compile(r"v\d+\.\d+")
_HTML = ("<!DOCTYPE html><html><head><title>Facebook | Error</title></head>"
         "<body><h1>Sorry, something went wrong.</h1><p>We're working on it.</p></body></html>")


@dataclass
class StoredPost:
    """A feed post (parent None) or a comment on one, as the fake keeps it."""

    id: str
    message: str | None
    link: str | None
    created: float
    parent: str | None = None
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "comment" if self.parent else "post",
            "message": self.message,
            "link": self.link,
            "parent": self.parent,
            "created_time": _graph_time(self.created),
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class Request:
    """One request as it arrived: where the token came from matters (never the query)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    authorization: str | None
    token_in_query: bool


@dataclass
class _Identity:
    id: str
    name: str
    is_page: bool


@dataclass
class FakeGraph(Fake):
    """An aiohttp app on 127.0.0.1 that answers Graph API calls for one page as `mode` says."""

    MODES = MODES
    KIND = "Graph fake"

    token: str = "page-token"
    page_id: str = "104857600123456"
    page_name: str = "Bibliothèque centrale"
    user_token: str | None = "user-token"
    business_id: str = "300400500600700"
    host: str = "127.0.0.1"
    port: int = 0
    # Minutes until access comes back, per usage header, when throttling.
    regain: dict[str, float] = field(default_factory=lambda: {"X-Business-Use-Case-Usage": 2})
    duplicate_window: float = 3600.0
    token_expires_at: int = 0  # debug_token's expires_at (0: never, as for a long-lived page token)
    data_access_expires_at: int = 0
    usage_share: int | None = None  # the percentage the usage headers report (default: one per request)
    posts: list[StoredPost] = field(default_factory=list)
    comments: list[StoredPost] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    delay: float = 0.0  # seconds before answering a POST (each makes a post or a comment)
    log: Path | None = None  # where to append each post and comment made, as a JSON line

    def __post_init__(self) -> None:
        self._next_id = 1_000_000_000_000_001
        self._setup("ok", self.delay, self.log)

    @property
    def url(self) -> str:
        """The server's root: /_fake/* lives here, and Graph paths work here unversioned."""
        return f"http://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        """Where a channel's graph_url points, versioned like the real one."""
        return f"{self.url}/v21.0"

    def stored(self) -> list[dict[str, Any]]:
        """Every post and comment ever stored, oldest first, deleted ones marked."""
        items = sorted([*self.posts, *self.comments], key=lambda p: p.created)
        return [p.as_json() for p in items]

    def live_posts(self) -> list[StoredPost]:
        return [p for p in self.posts if not p.deleted]

    # -- the Graph API ---------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_fake/posts", self._fake_posts)
        app.router.add_post("/_fake/mode", self._fake_control)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.requests.append(Request(
            request.method, request.path, dict(request.query), form,
            request.headers.get("Authorization"), "access_token" in request.query,
        ))
        mode = await self._next_mode()
        if mode is None:
            return drop(request)
        if mode in ERROR_MODES:
            return self._error(mode)
        if mode == "server_error":
            return web.Response(status=500, text=_HTML, content_type="text/html",
                                headers=self._usage(False))
        if mode == "html":
            return web.Response(text=_HTML, content_type="text/html", headers=self._usage(False))
        answer = self._route(request, form)
        if request.method == "POST":
            if mode == "drop_after_post":
                return drop(request)
            await self._pause()
        return answer

    def _route(self, request: web.Request, form: dict[str, str]) -> web.Response:
        who = self._identity(request, form)
        if isinstance(who, web.Response):
            return who
        parts = [p for p in request.path.split("/") if p]
        if parts and _VERSION.fullmatch(parts[0]):
            parts = parts[1:]
        method = request.method
        if method == "GET" and parts == ["me"]:
            return self._ok(_fields({"id": who.id, "name": who.name}, request.query))
        if method == "GET" and parts == ["debug_token"]:
            return self._debug_token(request.query.get("input_token"))
        if len(parts) == 2 and parts[1] == "feed" and parts[0] == self.page_id:
            if method == "GET":
                return self._feed(request)
            if method == "POST":
                return self._post(who, form)
        if len(parts) == 2 and parts[1] == "comments" and method == "POST":
            return self._comment(who, parts[0], form)
        if len(parts) == 2 and parts[1] == "comments" and method == "GET":
            return self._comments(request, parts[0])
        if len(parts) == 1 and method == "DELETE":
            return self._delete(who, parts[0])
        return self._error("unsupported", method=method.lower(), id="/".join(parts))

    def _identity(self, request: web.Request, form: dict[str, str]) -> _Identity | web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = value if scheme in ("Bearer", "OAuth") else None
        token = token or form.get("access_token") or request.query.get("access_token")
        if not token:
            return self._error("missing_token")
        if token == self.token:
            return _Identity(self.page_id, self.page_name, True)
        if self.user_token is not None and token == self.user_token:
            return _Identity("100004567890123", "Jane Librarian", False)
        return self._error("invalid_token")

    def _debug_token(self, token: str | None) -> web.Response:
        """The token's metadata as Graph answers it: expires_at 0 means it never expires."""
        valid = token in (self.token, self.user_token)
        return self._ok({"data": {
            "app_id": "1234567890", "type": "PAGE", "application": "statusd", "is_valid": valid,
            "expires_at": self.token_expires_at, "data_access_expires_at": self.data_access_expires_at,
            "scopes": ["pages_manage_posts", "pages_read_engagement"], "profile_id": self.page_id,
        }})

    def _feed(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "25") or 25)
        newest = sorted(self.live_posts(), key=lambda p: p.created, reverse=True)[:limit]
        data = [_fields(_graph_post(p), request.query) for p in newest]
        return self._ok({"data": data, "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"}}})

    def _post(self, who: _Identity, form: dict[str, str]) -> web.Response:
        if not who.is_page:
            return self._error("permission_200")
        message, link = form.get("message") or None, form.get("link") or None
        if message is None and link is None:
            return self._error("missing_message")
        if message is not None and len(message) > MAX_CHARS:
            return self._error("too_long")
        if self._is_duplicate(message, link):
            return self._error("duplicate")
        post = StoredPost(f"{self.page_id}_{self._new_id()}", message, link, time.time())
        self.posts.append(post)
        self._log_post(post.created, f"/{self.page_id}/feed", post.id)
        return self._ok({"id": post.id})

    def _comment(self, who: _Identity, parent: str, form: dict[str, str]) -> web.Response:
        target = next((p for p in self.posts if p.id == parent and not p.deleted), None)
        if target is None:
            return self._error("unsupported", method="post", id=parent)
        if not form.get("message"):
            return self._error("missing_message")
        object_id = parent.rpartition("_")[2]
        comment = StoredPost(f"{object_id}_{self._new_id()}", form["message"], None, time.time(),
                             parent=parent)
        self.comments.append(comment)
        self._log_post(comment.created, f"/{parent}/comments", comment.id)
        return self._ok({"id": comment.id})

    def _comments(self, request: web.Request, parent: str) -> web.Response:
        """GET /{post-id}/comments, as Graph answers it (oldest first, unless asked otherwise)."""
        if not any(p.id == parent and not p.deleted for p in self.posts):
            return self._error("unsupported", method="get", id=parent)
        limit = int(request.query.get("limit", "25") or 25)
        found = [c for c in self.comments if c.parent == parent and not c.deleted]
        if request.query.get("order") == "reverse_chronological":
            found.reverse()
        data = [_fields(_graph_post(c), request.query) for c in found[:limit]]
        return self._ok({"data": data, "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"}}})

    def _delete(self, who: _Identity, object_id: str) -> web.Response:
        found = next((p for p in [*self.posts, *self.comments]
                      if p.id == object_id and not p.deleted), None)
        if found is None:
            return self._error("unsupported", method="delete", id=object_id)
        found.deleted = True
        self.deleted.append(object_id)
        return self._ok({"success": True})

    def _is_duplicate(self, message: str | None, link: str | None) -> bool:
        since = time.time() - self.duplicate_window
        return any(p.message == message and p.link == link and p.created >= since
                   for p in self.live_posts())

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- answers ---------------------------------------------------------------------------------

    def _ok(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, headers=self._usage(False))

    def _error(self, name: str, **fill: str) -> web.Response:
        recorded = json.loads((RESPONSES / f"{name}.json").read_text(encoding="utf-8"))
        error = recorded["body"]["error"]
        error["fbtrace_id"] = secrets.token_urlsafe(17)[:23]
        for key, value in fill.items():
            error["message"] = error["message"].replace("{" + key + "}", value)
        headers = self._usage(name in THROTTLE_MODES)
        if error["code"] == 190:
            headers["WWW-Authenticate"] = (
                f'OAuth "Facebook Platform" "invalid_token" "{error["message"]}"')
        return web.json_response(recorded["body"], status=recorded["status"], headers=headers)

    def _usage(self, throttled: bool) -> dict[str, str]:
        """The usage headers Graph puts on every answer (percentages; minutes to regain access)."""
        share = 100 if throttled else min(99, len(self.requests))
        if self.usage_share is not None and not throttled:
            share = self.usage_share
        headers = {}
        for name in USAGE_HEADERS:
            usage: dict[str, Any] = {"call_count": share, "total_cputime": share // 4,
                                     "total_time": share // 3}
            if name != "X-App-Usage" or name in self.regain:
                regain = self.regain.get(name, 0) if throttled else 0
                usage["estimated_time_to_regain_access"] = regain
            if name == "X-Business-Use-Case-Usage":
                usage = {self.business_id: [{"type": "pages", **usage}]}
            headers[name] = json.dumps(usage)
        return headers

    # -- control ---------------------------------------------------------------------------------

    async def _fake_posts(self, request: web.Request) -> web.Response:
        return web.json_response(self.stored())


def _graph_time(moment: float) -> str:
    """Graph's timestamp format: 2025-06-10T12:34:56+0000."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(moment))


def _graph_post(post: StoredPost) -> dict[str, Any]:
    body: dict[str, Any] = {"id": post.id, "created_time": _graph_time(post.created)}
    if post.message is not None:  # Graph leaves the field out for a post without text
        body["message"] = post.message
    return body


def _fields(body: dict[str, Any], query: Any) -> dict[str, Any]:
    """Only the asked `fields` (Graph always answers the id)."""
    asked = {f.strip() for f in str(query.get("fields", "")).split(",") if f.strip()}
    return body if not asked else {k: v for k, v in body.items() if k in asked or k == "id"}


# -- standalone process ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = options("facebook", "A fake Facebook Graph API for one page.", MODES)
    parser.add_argument("--token", default="page-token", help="the page access token it accepts")
    parser.add_argument("--page-id", default="104857600123456")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    graph = FakeGraph(token=args.token, page_id=args.page_id, host=args.host, port=args.port,
                      delay=args.delay, log=args.log)
    graph.mode = args.mode
    asyncio.run(serve(graph))


if __name__ == "__main__":
    main()
