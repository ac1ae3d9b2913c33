"""A Mastodon server that answers like the real one, for the Mastodon channel and the daemon.

It checks the Bearer token, honours Idempotency-Key (for `idempotency_ttl` seconds, as
Mastodon does for an hour), counts a status as Mastodon does (grapheme clusters, every
URL 23) against `max_characters`, renders `content` as HTML, sends X-RateLimit-* headers
(the reset as an ISO-8601 time) on every answer, and fails on demand.

A `shape` (tests/support/fakes/mastodon_shapes.py) makes it a server that is not Mastodon:
one that ignores Idempotency-Key, counts URLs raw, has no v2 instance endpoint,
answers a bad token with 400 and HTML, rewrites typed entities, refuses with its
own words. `delay` makes it stall: the status exists at once, the answer comes late.

In a test:

    async with MastodonServer(token="t0k") as server:
        ...                                  # point the channel's `instance` at server.url
        assert [p["text"] for p in server.posts] == [...]

As its own process (prints its base URL as the first line of stdout; stops on SIGTERM):

    python -m tests.support.fakes.mastodon --port 0 --token T --max-characters 500 [--delay 0.15] [--shape go]

`GET /_fake/posts` answers the live posts as JSON, `GET /_fake/state` the counts, and
`POST /_fake/control {"mode": ..., "delay": ..., "status": ..., "max_characters": ...,
"forget_keys": true, "shape": "go"}` switches a running process.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import regex  # \X matches a grapheme cluster
from aiohttp import web
from aiohttp.typedefs import Handler
from mastodon._url_regex import url_regex  # Mastodon.py's port of Mastodon's URL pattern

from tests.support.fakes.common import Fake, drop, options, serve
from tests.support.fakes.mastodon_shapes import SHAPES, Shape

__all__ = ["MODES", "SHAPES", "MastodonServer", "Shape", "mastodon_length", "to_html"]

RESPONSES = Path(__file__).resolve().parent / "responses" / "mastodon"
MODES = (
    "ok",                # answer as Mastodon does
    "hang",              # no answer until the mode is switched or the server stops
    "accept_then_hang",  # a POST creates the status, then no answer comes (a crash mid-send)
    "ratelimit",         # 429 {"error": "Too many requests"}, X-RateLimit-Reset in `retry_after` s
    "error",             # `status` with Mastodon's JSON error body for that code
    "html",              # `status` with an HTML body, as a proxy or another server answers
)
STATUS_BASE = 113_525_000_000_000_000
_ERRORS = {
    400: "Bad request",
    401: "The access token is invalid",
    403: "This action is outside the authorized scopes",
    404: "Record not found",
    410: "Gone",
    422: "Validation failed: Text can't be blank",
    429: "Too many requests",
    500: "We're sorry, but something went wrong on our end.",
    503: "Service unavailable",
}
_HTML = "<html><head><title>{code}</title></head><body><center><h1>{code}</h1></center><hr>" \
        "<center>nginx</center></body></html>"
_VISIBILITIES = ("public", "unlisted", "private", "direct")


def mastodon_length(text: str, *, raw_urls: bool = False, graphemes: bool = True) -> int:
    """A status's length as Mastodon's validator counts it: grapheme clusters, URLs as 23
    (or, as other servers count, code points and URLs at their raw length)."""
    countable = text if raw_urls else url_regex.sub(lambda m: m.group(2) + "x" * 23, text)
    return len(regex.findall(r"\X", countable)) if graphemes else len(countable)


def to_html(text: str) -> str:
    """`content` as Mastodon renders plain text: paragraphs, <br />, linked URLs in spans."""
    paragraphs = [p for p in regex.split(r"\n{2,}", text.strip()) if p]
    return "".join(f"<p>{_linked(p).replace(chr(10), '<br />')}</p>" for p in paragraphs)


def _linked(text: str) -> str:
    out, last = [], 0
    for match in url_regex.finditer(text):
        out.append(html.escape(text[last:match.start(3)], quote=False))
        out.append(_anchor(match.group(3)))
        last = match.end(3)
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def _anchor(url: str) -> str:
    scheme, _, rest = url.partition("://")
    shown, hidden = rest[:30], rest[30:]
    visible = (f'<span class="ellipsis">{html.escape(shown)}</span>' if hidden
               else f'<span class="">{html.escape(shown)}</span>')
    return (f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener">'
            f'<span class="invisible">{scheme}://</span>{visible}'
            f'<span class="invisible">{html.escape(hidden)}</span></a>')


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((RESPONSES / name).read_text(encoding="utf-8"))
    return value


@dataclass(frozen=True)
class Attempt:
    """One API request as it arrived, whatever it was answered."""

    method: str
    path: str
    key: str | None
    authorization: str | None
    wall: float


class MastodonServer(Fake):
    """An aiohttp app on 127.0.0.1 holding one account's statuses, answering as `mode` says."""

    MODES = MODES
    KIND = "server"

    def __init__(self, *, token: str = "fake-token", max_characters: int | None = -1,
                 mode: str = "ok", status: int = 503, retry_after: int = 30,
                 idempotency_ttl: float = 3600.0, host: str = "127.0.0.1", port: int = 0,
                 delay: float = 0.0, log: Path | None = None, shape: Shape | str = "mastodon") -> None:
        self.token = token
        self.shape = SHAPES[shape] if isinstance(shape, str) else shape
        # None: the instance omits the limit; -1 (the default): the shape's own.
        self.max_characters = self.shape.default_max if max_characters == -1 else max_characters
        self.status = status
        self.retry_after = retry_after
        self.idempotency_ttl = idempotency_ttl
        self.host, self.port = host, port
        self.account = _load("account.json")
        self.attempts: list[Attempt] = []
        self.statuses: dict[str, dict[str, Any]] = {}  # every status made, by id
        self.deleted: list[str] = []
        self.repeats = 0
        self._keys: dict[str, tuple[str, float]] = {}
        self._setup(mode, delay, log)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def posts(self) -> list[dict[str, Any]]:
        """The live statuses, oldest first, each with its source `text` and idempotency key."""
        return [s for s in self.statuses.values() if s["id"] not in self.deleted]

    def forget_keys(self) -> None:
        """Forget every Idempotency-Key, as Mastodon does after an hour."""
        self._keys.clear()

    def stats(self) -> dict[str, Any]:
        return {"mode": self._mode, "posts": len(self.posts), "attempts": len(self.attempts),
                "deleted": list(self.deleted), "repeats": self.repeats,
                "max_characters": self.max_characters, "shape": self.shape.name}

    async def start(self) -> None:
        await super().start()
        self.account["url"] = f"{self.url}/@{self.account['username']}"
        self.account["uri"] = f"{self.url}/users/{self.account['username']}"

    # -- how every API answer is made ----------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers])
        app.router.add_get("/_fake/posts", self._fake_posts)
        app.router.add_get("/_fake/state", self._fake_state)
        app.router.add_post("/_fake/control", self._fake_control)
        for path in ("/api/v2/instance", "/api/v2/instance/"):
            app.router.add_get(path, self._instance)
        for path in ("/api/v1/instance", "/api/v1/instance/"):
            app.router.add_get(path, self._instance_v1)
        app.router.add_get("/api/v1/accounts/verify_credentials", self._verify_credentials)
        app.router.add_get("/api/v1/accounts/{id}/statuses", self._account_statuses)
        app.router.add_post("/api/v1/statuses", self._delayed(self._post_status))
        app.router.add_delete("/api/v1/statuses/{id}", self._delete_status)
        return app

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await handler(request)
        self.attempts.append(Attempt(request.method, request.path,
                                     request.headers.get("Idempotency-Key"),
                                     request.headers.get("Authorization"), time.time()))
        self._notify()
        mode = await self._next_mode()
        if mode is None:
            return drop(request)
        response: web.StreamResponse = self._failure(mode) or await handler(request)
        if mode == "accept_then_hang":
            return await self._vanish(request)
        remaining, reset = (0, self.retry_after) if mode == "ratelimit" else (299, 300)
        response.headers["X-RateLimit-Limit"] = "300"
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = _iso(time.time() + reset)
        return response

    def _failure(self, mode: str) -> web.Response | None:
        if mode == "ratelimit":
            return _error(429)
        if mode == "error":
            return _error(self.status)
        if mode == "html":
            text = _HTML.format(code=f"{self.status} {_reason(self.status)}".strip())
            return web.Response(status=self.status, text=text, content_type="text/html")
        return None

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    # -- endpoints ------------------------------------------------------------------------------

    async def _instance(self, request: web.Request) -> web.Response:
        if not self.shape.v2_instance:
            return _error(404)
        body = _load("instance_v2.json")
        body["version"], body["source_url"] = self.shape.version, self.shape.source_url
        body["configuration"]["statuses"]["characters_reserved_per_url"] = self.shape.url_length
        body["domain"] = f"{self.host}:{self.port}"
        if self.max_characters is None:
            del body["configuration"]["statuses"]["max_characters"]
        else:
            body["configuration"]["statuses"]["max_characters"] = self.max_characters
        return web.json_response(body)

    async def _instance_v1(self, request: web.Request) -> web.Response:
        return web.json_response(self.shape.v1_instance(f"{self.host}:{self.port}", self.max_characters))

    async def _verify_credentials(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self.shape.unauthorized()
        return web.json_response({**self.account, "statuses_count": len(self.posts)})

    async def _account_statuses(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") and not self._authorized(request):
            return self.shape.unauthorized()
        if request.match_info["id"] != self.account["id"]:
            return _error(404)
        limit = min(int(request.query.get("limit", "20")), 40)
        max_id = request.query.get("max_id")
        newest_first = [_public(s) for s in reversed(self.posts)
                        if max_id is None or int(s["id"]) < int(max_id)]
        return web.json_response(newest_first[:limit])

    async def _post_status(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self.shape.unauthorized()
        form = await _form(request)
        key = request.headers.get("Idempotency-Key")
        remembered = self._keys.get(key) if key and self.shape.honours_idempotency else None
        if remembered and time.time() - remembered[1] < self.idempotency_ttl:
            self.repeats += 1
            return web.json_response(_public(self.statuses[remembered[0]]))
        problem = self._invalid(form)
        if problem is not None:
            return problem
        status = self._create(form, key)
        self._log_post(time.time(), request.path, status["id"])
        if key:
            self._keys[key] = (status["id"], time.time())
        return web.json_response(_public(status))

    def _invalid(self, form: dict[str, str]) -> web.Response | None:
        text = form.get("status", "")
        if not text.strip():
            return _error(422)
        counted = mastodon_length(self.shape.stored(text), raw_urls=self.shape.raw_urls,
                                  graphemes=self.shape.graphemes)
        if self.max_characters is not None and counted > self.max_characters:
            return self.shape.refusal(self.max_characters)
        if form.get("visibility", "public") not in _VISIBILITIES:
            return _error(422, "Validation failed: Visibility is not included in the list")
        parent = form.get("in_reply_to_id")
        if parent and (parent not in self.statuses or parent in self.deleted):
            return _error(404)
        return None

    def _create(self, form: dict[str, str], key: str | None) -> dict[str, Any]:
        status_id = str(STATUS_BASE + len(self.statuses) + 1)
        parent = form.get("in_reply_to_id") or None
        status = {
            **_load("status.json"),
            "id": status_id,
            "created_at": _iso(time.time()),
            "in_reply_to_id": parent,
            "in_reply_to_account_id": self.account["id"] if parent else None,
            "visibility": form.get("visibility", "public"),
            "language": form.get("language") or None,
            "uri": f"{self.account['uri']}/statuses/{status_id}",
            "url": f"{self.account['url']}/{status_id}",
            "content": to_html(self.shape.stored(form["status"])),
            "account": {k: v for k, v in self.account.items() if k != "source"},
            "text": self.shape.stored(form["status"]),  # for /_fake/posts; only DELETE answers it
            "idempotency_key": key,
        }
        self.statuses[status_id] = status
        self._notify()
        return status

    async def _delete_status(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self.shape.unauthorized()
        status_id = request.match_info["id"]
        if status_id not in self.statuses or status_id in self.deleted:
            return _error(404)
        self.deleted.append(status_id)
        self._notify()
        return web.json_response({**_public(self.statuses[status_id]),
                                  "text": self.statuses[status_id]["text"]})

    # -- control ---------------------------------------------------------------------------------

    async def _fake_posts(self, request: web.Request) -> web.Response:
        return web.json_response(self.posts)

    def _apply_own(self, change: dict[str, Any]) -> None:
        if "status" in change:
            self.status = int(change["status"])
        if "max_characters" in change:
            self.max_characters = change["max_characters"]
        if change.get("forget_keys"):
            self.forget_keys()
        if "shape" in change:
            if change["shape"] not in SHAPES:
                raise ValueError(f"unknown shape {change['shape']!r}; expected one of: {', '.join(SHAPES)}")
            self.shape = SHAPES[change["shape"]]


def _public(status: dict[str, Any]) -> dict[str, Any]:
    """A status as the API shows it: without the fake's bookkeeping."""
    return {k: v for k, v in status.items() if k not in ("text", "idempotency_key")}


def _error(code: int, message: str | None = None) -> web.Response:
    return web.json_response({"error": message or _ERRORS.get(code, "Error")}, status=code)


async def _form(request: web.Request) -> dict[str, str]:
    """The parameters of a POST, sent as a form (Mastodon.py's way) or as JSON."""
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            return {}
        return {k: str(v) for k, v in body.items() if v is not None}
    return {k: str(v) for k, v in (await request.post()).items()}


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


# -- standalone process ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = options("mastodon", "A fake Mastodon server.", MODES)
    parser.add_argument("--token", required=True, help="the access token it accepts")
    parser.add_argument("--max-characters", type=int, default=-1, help="-1: the shape's own")
    parser.add_argument("--shape", default="mastodon", choices=sorted(SHAPES),
                        help="which kind of Mastodon-API server to be")
    parser.add_argument("--idempotency-ttl", type=float, default=3600.0,
                        help="seconds an Idempotency-Key is remembered (Mastodon: an hour)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    asyncio.run(serve(MastodonServer(
        token=args.token, max_characters=args.max_characters, mode=args.mode,
        idempotency_ttl=args.idempotency_ttl, host=args.host, port=args.port,
        delay=args.delay, log=args.log, shape=args.shape)))


if __name__ == "__main__":
    main()
