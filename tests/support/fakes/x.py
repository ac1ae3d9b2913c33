"""The X API v2 (api.twitter.com) as the X channel sees it, served over TLS on 127.0.0.1.

It checks each request's OAuth 1.0a signature (HMAC-SHA1 over method, URL and
parameters, with the consumer and token secrets), counts a post's length as X does
(twitter-text v3 weights: 1 or 2, every URL 23, an emoji sequence 2), refuses
duplicates, sends x-rate-limit-* headers on every answer, and fails on demand.

TLS is real: `make_tls(directory)` makes a throwaway CA and a certificate for
api.twitter.com and api.x.com, so the channel keeps `https://api.twitter.com` and
only its TCP connection is sent here (its `connect_to` and `ca_file` options).

In a test:

    tls = make_tls(tmp_path)
    async with XServer(tls) as server:
        ...        # channel options: connect_to=server.connect_to, ca_file=str(tls.ca_file)
        assert [p["text"] for p in server.posts] == [...]

As its own process (prints its base URL, then `ca_file=PATH`; stops on SIGTERM):

    python -m tests.support.fakes.x --port 0 [--tls-dir DIR] [--delay 0.15]

`GET /_fake/posts` answers the live posts as JSON, `GET /_fake/state` the counts and
`POST /_fake/control {"mode": ..., "delay": ..., "status": ...}` switches a running process (all
over the same TLS port: trust the printed CA, or skip verification).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import subprocess
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import regex
from aiohttp import web

from tests.support.fakes.common import Fake, drop, options, serve

__all__ = ["ACCOUNT", "MODES", "Credentials", "Tls", "XServer", "make_tls", "x_length"]

RESPONSES = Path(__file__).resolve().parent / "responses" / "x"
MODES = (
    "ok",               # answer as X does
    "hang",             # no answer until the mode is switched or the server stops
    "accept_then_hang", # a POST creates the post, then no answer comes (a crash mid-send)
    "ratelimit",        # 429, x-rate-limit-reset in `retry_after` s
    "daily",            # 429 with the 24-hour user cap spent, reset in `daily_after` s
    "error",            # `status` (5xx) with X's JSON problem body
    "html",             # 502 with an HTML page, as a proxy in front of X answers
    "unauthorized",     # 401 whatever the keys
    "readonly",         # 403: the app has Read permission only
)
TWEET_BASE = 1_456_012_973_835_788_293  # the recorded responses' ids are of this size
SNOWFLAKE_EPOCH_MS = 1_288_834_974_657
WINDOW = 900  # X's rate-limit windows are 15 minutes
POSTS_PER_WINDOW = 100
_HTML_502 = ("<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
             "<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n")
# A link for X needs a domain with a letter TLD: twitter-text leaves IP-address URLs as text.
_URL = regex.compile(r"https?://(?:[\w-]+\.)+[^\W\d_]{2,}(?::\d+)?(?:[/?#]\S*)?", regex.IGNORECASE)
_MODIFIER = regex.compile(r"[\p{Emoji_Modifier}\ufe0f\u20e3\U000e0020-\U000e007f]")
_PICTOGRAPHIC = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")


def _load(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((RESPONSES / name).read_text(encoding="utf-8"))
    return value


ACCOUNT: dict[str, str] = _load("me.json")["data"]


# -- how X counts ------------------------------------------------------------------------------

def snowflake(sequence: int, now: float | None = None) -> str:
    """A post id as X makes them: milliseconds since X's epoch, shifted 22 bits, and a sequence."""
    moment = time.time() if now is None else now
    return str(((int(moment * 1000) - SNOWFLAKE_EPOCH_MS) << 22) | (sequence & 0x3FFFFF))


def x_length(text: str) -> int:
    """A post's length as X counts it (twitter-text config v3), written apart from statusd's."""
    text = unicodedata.normalize("NFC", text)
    urls = len(_URL.findall(text))
    return 23 * urls + sum(_weigh(cluster) for cluster in _clusters(_URL.sub("", text)))


def _clusters(text: str) -> list[str]:
    """Emoji sequences whole (modifiers, keycaps, ZWJ joins, flags); other code points alone."""
    clusters: list[str] = []
    i = 0
    while i < len(text):
        end = i + 1
        if _emoji_start(text, i):
            if regex.match(r"\p{Regional_Indicator}{2}", text[i : i + 2]):
                end += 1  # a flag is a pair
            while end < len(text):
                if _MODIFIER.match(text[end]):
                    end += 1
                elif text[end] == "\u200d" and _PICTOGRAPHIC.match(text[end + 1 : end + 2]):
                    end += 2
                else:
                    break
        clusters.append(text[i:end])
        i = end
    return clusters


def _emoji_start(text: str, i: int) -> bool:
    char, after = text[i], text[i + 1 : i + 3]
    if char in "#*0123456789\u00a9\u00ae":  # text unless made emoji by FE0F or a keycap
        if after[:1] == "\ufe0f":
            return char in "\u00a9\u00ae" or after == "\ufe0f\u20e3"
        return after[:1] == "\u20e3"
    return bool(_PICTOGRAPHIC.match(char)) and not _light(char)


def _weigh(cluster: str) -> int:
    return 1 if len(cluster) == 1 and _light(cluster) else 2


def _light(char: str) -> bool:
    code = ord(char)
    return code <= 4351 or 8192 <= code <= 8205 or 8208 <= code <= 8223 or 8242 <= code <= 8247


# -- TLS -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tls:
    """A throwaway CA and the server certificate it signed for X's API names."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls(directory: Path) -> Tls:
    """Write ca.pem, server.pem and server.key (EC P-256, valid 2 days) with the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca_key, csr, ext = directory / "ca.key", directory / "server.csr", directory / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid:always\n"
        "subjectAltName=DNS:api.twitter.com,DNS:api.x.com,IP:127.0.0.1\n",
        encoding="ascii",
    )
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *newkey, "-keyout", ca_key, "-out", tls.ca_file, "-days", "2",
             "-subj", "/CN=statusd test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-new", *newkey, "-keyout", tls.key_file, "-out", csr,
             "-subj", "/CN=api.twitter.com")
    _openssl("x509", "-req", "-in", csr, "-CA", tls.ca_file, "-CAkey", ca_key,
             "-CAcreateserial", "-out", tls.cert_file, "-days", "2", "-extfile", ext)
    return tls


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


# -- OAuth 1.0a ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    """The four keys of an app and of the account's access token."""

    consumer_key: str = "fake-consumer-key"
    consumer_secret: str = "fake-consumer-secret"
    access_token: str = f"{ACCOUNT['id']}-fakeAccessToken"
    access_token_secret: str = "fake-access-token-secret"


def _pct(value: str) -> str:
    return quote(value, safe="~-._")


def _oauth_problem(request: web.Request, keys: Credentials) -> str | None:
    """Why the Authorization header is not a valid OAuth 1.0a signature by `keys`, or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        return "no OAuth Authorization header"
    params = {}
    for part in header[6:].split(","):
        name, _, value = part.strip().partition("=")
        params[name] = unquote(value.strip('"'))
    required = {"oauth_consumer_key", "oauth_nonce", "oauth_signature", "oauth_signature_method",
                "oauth_timestamp", "oauth_token", "oauth_version"}
    if missing := required - params.keys():
        return f"missing {sorted(missing)}"
    if params["oauth_signature_method"] != "HMAC-SHA1" or params["oauth_version"] != "1.0":
        return "not HMAC-SHA1 / 1.0"
    if params["oauth_consumer_key"] != keys.consumer_key:
        return "unknown consumer key"
    if params["oauth_token"] != keys.access_token:
        return "unknown access token"
    if abs(int(params["oauth_timestamp"]) - time.time()) > 300:
        return "timestamp too far off"
    if not hmac.compare_digest(params["oauth_signature"], _signature(request, params, keys)):
        return "bad signature"
    return None


def _signature(request: web.Request, oauth: dict[str, str], keys: Credentials) -> str:
    pairs = [(k, v) for k, v in oauth.items() if k != "oauth_signature"]
    pairs += list(request.query.items())
    normal = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in pairs))
    base_url = f"https://{request.host.split(':')[0].lower()}{request.path}"
    base = "&".join([request.method.upper(), _pct(base_url), _pct(normal)])
    secret = f"{_pct(keys.consumer_secret)}&{_pct(keys.access_token_secret)}"
    digest = hmac.new(secret.encode(), base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# -- the server ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    """One API request as it arrived, whatever it was answered."""

    method: str
    path: str
    host: str
    oauth_problem: str | None
    wall: float


class XServer(Fake):
    """An aiohttp app on 127.0.0.1 (TLS) holding one account's posts, answering as `mode` says."""

    MODES = MODES
    KIND = "X server"

    def __init__(self, tls: Tls, *, keys: Credentials | None = None, mode: str = "ok",
                 status: int = 503, retry_after: int = 30, daily_after: int = 3 * 3600,
                 host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                 log: Path | None = None) -> None:
        self.tls = tls
        self.keys = keys or Credentials()
        self.status = status
        self.retry_after = retry_after
        self.daily_after = daily_after
        self.host, self.port = host, port
        self.attempts: list[Attempt] = []
        self.tweets: dict[str, dict[str, Any]] = {}  # every post made, by id
        self.deleted: list[str] = []
        self._window = (time.time(), 0)  # start, posts made in it
        self._setup(mode, delay, log)

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def connect_to(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def posts(self) -> list[dict[str, Any]]:
        """The live posts, oldest first: id, text, in_reply_to, created_at."""
        return [t for t in self.tweets.values() if t["id"] not in self.deleted]

    def stats(self) -> dict[str, Any]:
        return {"mode": self._mode, "posts": len(self.posts), "made": len(self.tweets),
                "attempts": len(self.attempts), "deleted": list(self.deleted)}

    async def wait_attempts(self, count: int, timeout: float = 5.0) -> list[Attempt]:
        """The API requests once at least `count` arrived, answered or not."""
        await self._until(
            lambda: len(self.attempts) >= count,
            timeout,
            lambda: f"the server got {len(self.attempts)} of {count} requests in {timeout:g} s",
        )
        return self.attempts

    # -- middleware: modes and headers ---------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._headers])
        app.router.add_get("/_fake/posts", self._fake_posts)
        app.router.add_get("/_fake/state", self._fake_state)
        app.router.add_post("/_fake/control", self._fake_control)
        app.router.add_post("/2/tweets", self._delayed(self._create))
        app.router.add_delete("/2/tweets/{id}", self._delete)
        app.router.add_get("/2/users/me", self._me)
        app.router.add_get("/2/users/{id}/tweets", self._timeline)
        return app

    def _ssl_context(self) -> ssl.SSLContext:
        return self.tls.server_context()

    @web.middleware
    async def _headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            answer: web.StreamResponse = await handler(request)
            return answer
        problem = _oauth_problem(request, self.keys)
        attempt = Attempt(request.method, request.path, request.host, problem, time.time())
        self.attempts.append(attempt)
        self._notify()
        mode = await self._next_mode()
        if mode is None:
            return drop(request)
        response = self._failure(mode) or (
            _problem("unauthorized.json") if problem else await handler(request))
        if mode == "accept_then_hang" and response.status == 201:  # the post exists, unanswered
            return await self._vanish(request)
        if mode not in ("ratelimit", "daily"):
            response.headers.update(self._rate_headers(request))
        return response

    def _failure(self, mode: str) -> web.Response | None:
        now = int(time.time())
        if mode in ("ratelimit", "daily"):
            headers = {"x-rate-limit-limit": str(POSTS_PER_WINDOW), "x-rate-limit-remaining": "0",
                       "x-rate-limit-reset": str(now + self.retry_after)}
            if mode == "daily":
                headers.update({"x-user-limit-24hour-limit": "17",
                                "x-user-limit-24hour-remaining": "0",
                                "x-user-limit-24hour-reset": str(now + self.daily_after),
                                "x-app-limit-24hour-limit": "1667",
                                "x-app-limit-24hour-remaining": "1500",
                                "x-app-limit-24hour-reset": str(now + 600)})
            return _problem("too_many_requests.json", headers)
        if mode == "error":
            phrase = HTTPStatus(self.status).phrase
            body = {"title": phrase, "detail": phrase, "type": "about:blank", "status": self.status}
            return web.json_response(body, status=self.status)
        if mode == "html":
            return web.Response(status=502, text=_HTML_502, content_type="text/html")
        if mode == "unauthorized":
            return _problem("unauthorized.json")
        if mode == "readonly":
            return _problem("oauth1_permissions.json")
        return None

    def _rate_headers(self, request: web.Request) -> dict[str, str]:
        start, used = self._window
        if time.time() - start >= WINDOW:
            start, used = time.time(), 0
        if request.method == "POST":
            used += 1
        self._window = (start, used)
        return {"x-rate-limit-limit": str(POSTS_PER_WINDOW),
                "x-rate-limit-remaining": str(max(0, POSTS_PER_WINDOW - used)),
                "x-rate-limit-reset": str(int(start + WINDOW))}

    # -- the API ---------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            text = body["text"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"errors": [{"message": "Requires a text"}],
                                      "title": "Invalid Request", "status": 400}, status=400)
        parent = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if parent is not None and parent not in self._live():
            invalid = json.dumps(_load("invalid_reply.json")).replace("{id}", str(parent))
            return web.json_response(json.loads(invalid), status=400)
        if x_length(text) > 280:
            return _problem("not_permitted.json")
        if any(t["text"] == text for t in self.posts):
            return _problem("duplicate.json")
        tweet_id = snowflake(len(self.tweets))
        self.tweets[tweet_id] = {"id": tweet_id, "text": text, "in_reply_to": parent,
                                 "created_at": time.time()}
        self._log_post(self.tweets[tweet_id]["created_at"], request.path, tweet_id)
        self._notify()
        return web.json_response({"data": {"id": tweet_id, "text": text,
                                           "edit_history_tweet_ids": [tweet_id]}}, status=201)

    def _live(self) -> dict[str, dict[str, Any]]:
        return {t["id"]: t for t in self.posts}

    async def _delete(self, request: web.Request) -> web.Response:
        tweet_id = request.match_info["id"]
        live = tweet_id in self._live()
        if live:
            self.deleted.append(tweet_id)
            self._notify()
        return web.json_response({"data": {"deleted": live}})

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"data": ACCOUNT})

    async def _timeline(self, request: web.Request) -> web.Response:
        count = int(request.query.get("max_results", "10"))
        if not 5 <= count <= 100:
            return web.json_response({"errors": [{"message": "max_results must be 5 to 100"}],
                                      "title": "Invalid Request", "status": 400}, status=400)
        mine = request.match_info["id"] == ACCOUNT["id"]
        newest = list(reversed(self.posts))[:count] if mine else []
        data = [{"id": t["id"], "text": t["text"], "edit_history_tweet_ids": [t["id"]]}
                for t in newest]
        if not data:
            return web.json_response({"meta": {"result_count": 0}})
        meta = {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
        return web.json_response({"data": data, "meta": meta})

    # -- control -------------------------------------------------------------------------------

    async def _fake_posts(self, request: web.Request) -> web.Response:
        return web.json_response(self.posts)

    def _apply_own(self, change: dict[str, Any]) -> None:
        if "status" in change:
            self.status = int(change["status"])


def _problem(name: str, headers: dict[str, str] | None = None) -> web.Response:
    body = _load(name)
    return web.json_response(body, status=int(body["status"]), headers=headers)


# -- standalone process ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = options("x", "A fake X API.", MODES)
    parser.add_argument("--tls-dir", type=Path, help="where to write the CA and certificate "
                                                      "(default: a temporary directory)")
    return parser


async def _serve(args: argparse.Namespace, directory: Path) -> None:
    tls = make_tls(directory)
    server = XServer(tls, mode=args.mode, host=args.host, port=args.port, delay=args.delay,
                     log=args.log)
    await serve(server, f"ca_file={tls.ca_file}")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.tls_dir is not None:
        asyncio.run(_serve(args, args.tls_dir))
        return
    with tempfile.TemporaryDirectory(prefix="fake-x-") as directory:
        asyncio.run(_serve(args, Path(directory)))


if __name__ == "__main__":
    main()
