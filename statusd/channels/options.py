"""What each channel type's section in statusd.yaml may hold: one frozen dataclass per type.

They live apart from the channel modules so that checking the config (every
command does) imports none of the platform clients: `statusd set` must start
fast whatever the channels. Each channel class names its own as `Options`;
tests/test_channel_registry.py holds the two to the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from statusd.config.options import CaFile, Duration, HostPort, PathSegment, Url
from statusd.config.types import Secret


@dataclass(frozen=True)
class ConsoleOptions:
    """Console options: an optional length limit, to try templates against."""

    max_chars: int | None = None


@dataclass(frozen=True)
class WebhookOptions:
    """Where to POST, the key the body is signed with, and an optional timeout."""

    url: Url
    secret: Secret
    timeout: Duration | None = None


@dataclass(frozen=True)
class MastodonOptions:
    """The instance, the account's token, who sees the posts, and an optional timeout."""

    instance: Url
    token: Secret
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    timeout: Duration | None = None


@dataclass(frozen=True)
class XOptions:
    """The app's and the account's OAuth 1.0a keys; where to connect and whom to trust (tests, proxies)."""

    consumer_key: Secret
    consumer_secret: Secret
    access_token: Secret
    access_token_secret: Secret
    timeout: Duration | None = None
    connect_to: HostPort | None = None
    ca_file: CaFile | None = None


@dataclass(frozen=True)
class FacebookOptions:
    """The page, its page access token, Graph's address (for tests) and an optional timeout."""

    page_id: PathSegment
    token: Secret
    graph_url: Url | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class BlueskyOptions:
    """The PDS, the account's handle and app password, and an optional timeout."""

    handle: str
    app_password: Secret
    service: Url | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class TelegramOptions:
    """The bot's token, the chat it posts to, and optionally another API, a timeout and the
    words an old message is replaced with when it can no longer be deleted."""

    token: Secret
    chat_id: str
    api_url: Url | None = None
    timeout: Duration | None = None
    withdrawn: str | None = None


@dataclass(frozen=True)
class MatrixOptions:
    """The homeserver, the account's access token, the room (id or alias) and an optional timeout."""

    homeserver: Url
    token: Secret
    room: str
    timeout: Duration | None = None


@dataclass(frozen=True)
class AppriseOptions:
    """The Apprise URL (by reference: it holds the service's secrets), a title and a timeout."""

    url: Secret
    title: str | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class GoogleBusinessOptions:
    """The account and location, the OAuth client and refresh token (by reference), the local
    post made for `limited` and `emergency` ("none": no post), how many days an open-ended
    closure marks closed, and where to connect (tests)."""

    account_id: PathSegment
    location_id: PathSegment
    client_id: Secret
    client_secret: Secret
    refresh_token: Secret
    limited_post: Literal["STANDARD", "EVENT", "ALERT", "none"] = "STANDARD"
    emergency_post: Literal["STANDARD", "EVENT", "ALERT", "none"] = "STANDARD"
    open_ended_days: int = 7
    api_url: Url | None = None
    token_url: Url | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class WebPushOptions:
    """The VAPID private key (by reference) and contact (`subject`: mailto: or https:), the
    notification's title, how many connections a fan-out may hold open, and a timeout.

    `loopback_endpoints` lets the subscribe API accept http://127.0.0.1 endpoints: for
    tests and a local push service only, never in production.
    """

    vapid_key: Secret
    subject: str
    title: str | None = None
    connections: int = 100
    timeout: Duration | None = None
    loopback_endpoints: bool = False


# Channel type → its options, in the order of statusd.channels.CHANNELS.
OPTIONS: dict[str, type[Any]] = {
    "console": ConsoleOptions,
    "webhook": WebhookOptions,
    "mastodon": MastodonOptions,
    "x": XOptions,
    "facebook": FacebookOptions,
    "bluesky": BlueskyOptions,
    "telegram": TelegramOptions,
    "matrix": MatrixOptions,
    "apprise": AppriseOptions,
    "google_business": GoogleBusinessOptions,
    "webpush": WebPushOptions,
}
