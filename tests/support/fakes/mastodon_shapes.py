"""The kinds of server that speak Mastodon's API, as the fake Mastodon server can play them.

Stock Mastodon, and two servers that are not Mastodon as they were seen in use
(/work/shared/API_NOTES.md, issue 11): a Go server with SQLite and a Django server with
PostgreSQL. Each differs in how it counts, what it remembers and how it refuses.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

__all__ = ["SHAPES", "Shape"]


@dataclass(frozen=True)
class Shape:
    """How one kind of server behaves where servers differ."""

    name: str = "mastodon"
    version: str = "4.3.2"
    source_url: str | None = "https://github.com/mastodon/mastodon"
    honours_idempotency: bool = True  # a repeated Idempotency-Key answers the first status
    raw_urls: bool = False            # URLs count their raw length, not `url_length`
    graphemes: bool = True            # grapheme clusters counted (False: code points)
    url_length: int = 23              # characters_reserved_per_url as advertised
    v2_instance: bool = True          # False: /api/v2/instance answers 404
    v1_limit: str = "configuration"   # where v1 says the limit: "configuration" or "max_toot_chars"
    bad_token: str = "json401"        # "json401" or "html400" ("Invalid Bearer token")
    too_long: str = "422"             # "422" (Mastodon), "spoiler" or "status" (400s)
    unescapes: bool = False           # a typed "&amp;" is stored and shown as "&"
    default_max: int = 500

    def with_limit(self, limit: int) -> Shape:
        return replace(self, default_max=limit)

    def unauthorized(self) -> web.Response:
        """The answer to a missing or wrong Bearer token."""
        if self.bad_token == "html400":
            page = "<html><body><h1>Bad Request</h1><p>Invalid Bearer token</p></body></html>"
            return web.Response(status=400, text=page, content_type="text/html")
        return web.json_response({"error": "The access token is invalid"}, status=401)

    def refusal(self, limit: int) -> web.Response:
        """The answer to a status over `limit`."""
        if self.too_long == "spoiler":
            return _error(400, f"Bad Request: text with spoiler exceed max chars ({limit})")
        if self.too_long == "status":
            return _error(400, "Status is too long")
        return _error(422, f"Validation failed: Text character limit of {limit} exceeded")

    def stored(self, text: str) -> str:
        """The text as the server keeps it."""
        return html.unescape(text) if self.unescapes else text

    def v1_instance(self, domain: str, limit: int | None) -> dict[str, Any]:
        """/api/v1/instance for this server."""
        body: dict[str, Any] = {"uri": domain, "title": f"{self.name} server", "version": self.version,
                                "languages": ["fr", "en"], "registrations": False}
        if limit is not None and self.v1_limit == "max_toot_chars":
            body["max_toot_chars"] = limit
        elif limit is not None:
            body["configuration"] = {"statuses": {"max_characters": limit, "max_media_attachments": 4,
                                                  "characters_reserved_per_url": self.url_length}}
        return body


def _error(code: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=code)


SHAPES = {
    "mastodon": Shape(),
    # Seen: ignores Idempotency-Key, counts URLs raw while advertising 25, 400 "text with
    # spoiler exceed max chars (300)", a version with its own suffix.
    "go": Shape(name="go", version="0.17.3+git-9c1a2f", source_url="https://codeberg.org/example/go-server",
                honours_idempotency=False, raw_urls=True, graphemes=False, url_length=25, too_long="spoiler",
                default_max=300),
    # Seen: no v2 instance endpoint (404, limit only in v1), bad token as 400 with HTML,
    # typed entities unescaped, 400 "Status is too long", a Mastodon-like number with a suffix.
    "django": Shape(name="django", version="4.0.0 (compatible; Django server 0.11)", source_url=None,
                    honours_idempotency=False, raw_urls=True, graphemes=False, v2_instance=False,
                    v1_limit="max_toot_chars", bad_token="html400", too_long="status", unescapes=True,
                    default_max=5000),
}
