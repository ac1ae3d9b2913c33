"""Every channel fake live at once (webhooks and the four platforms), each behind a FaultProxy,
with the channel config that points statusd at them and a way to list what each one holds."""

from __future__ import annotations

import random
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.proxy import FaultProxy, retry_headers
from tests.support.fakes.bluesky import FakeBluesky
from tests.support.fakes.facebook import FakeGraph
from tests.support.fakes.mastodon import MastodonServer
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.fakes.x import Credentials, Tls, XServer, make_tls

__all__ = ["ENV", "HOOK_SECRET", "PLATFORMS", "Fleet", "Hook", "Post", "tag_of"]

HOOK_SECRET = "fault-hook-secret-51c2"
COUNTER_TOKEN = "fault-counter-token-0b7e"
_KEYS = Credentials()
ENV = {
    "HOOK_SECRET": HOOK_SECRET, "COUNTER_TOKEN": COUNTER_TOKEN,
    "MASTODON_TOKEN": "fake-token",
    "X_CONSUMER_KEY": _KEYS.consumer_key, "X_CONSUMER_SECRET": _KEYS.consumer_secret,
    "X_ACCESS_TOKEN": _KEYS.access_token, "X_ACCESS_SECRET": _KEYS.access_token_secret,
    "FB_TOKEN": FakeGraph.token, "BSKY_PASSWORD": "app-pass-1234",
}
PLATFORMS = ("mastodon", "x", "facebook", "bluesky")
# Platforms carry staff updates only: X and Facebook refuse a repeated text, and the
# automatic seat posts repeat theirs by design (that is not what these tests are about).
_STAFF_EVENTS = "[status_changed, closure_planned, closure_reminder]"
_TAG = re.compile(r"\bu\d{4}\b")
FEEDS = (
    "feeds:\n"
    "  counters: {type: http, token: {env: COUNTER_TOKEN}}\n"
    "rules:\n"
    "  smoothing: {method: none}\n"
    "  min_interval: 0s\n"
)


def tag_of(text: str) -> str | None:
    """The unique tag (u0042) every test update carries in its message."""
    match = _TAG.search(text)
    return match.group(0) if match else None


@dataclass(frozen=True)
class Hook:
    """A webhook channel: its language, and whether a FaultProxy stands in front of it."""

    language: str
    proxied: bool = True


@dataclass(frozen=True)
class Post:
    """One post as a platform holds it: the key its remote id reduces to, and what identifies
    the update it carries (the event id for webhooks, the tag for platforms)."""

    key: str
    identity: str
    detail: str = ""  # how the platform holds it, for reports ("comment on ...")


@dataclass
class Fleet:
    """The fakes, their proxies (by channel name) and the TLS material of the X fake."""

    hooks: dict[str, WebhookReceiver]
    hook_languages: dict[str, str]
    mastodon: MastodonServer
    x: XServer
    facebook: FakeGraph
    bluesky: FakeBluesky
    tls: Tls
    proxies: dict[str, FaultProxy] = field(default_factory=dict)

    @classmethod
    async def start(cls, directory: Path, rng: random.Random, hooks: Mapping[str, Hook], *,
                    delay: tuple[float, float] = (0.0, 0.0),
                    faults: Mapping[str, Mapping[str, float]] | None = None,
                    channel_timeout: float = 1.0, mastodon_shape: str = "mastodon") -> Fleet:
        """Start every fake and a proxy per proxied channel; `faults` is by channel name.

        `mastodon_shape` "go" is a server that ignores Idempotency-Key (posts are looked up)."""
        tls = make_tls(directory / "tls")
        fleet = cls({name: WebhookReceiver(HOOK_SECRET) for name in hooks},
                    {name: hook.language for name, hook in hooks.items()},
                    MastodonServer(shape=mastodon_shape), XServer(tls), FakeGraph(), FakeBluesky(), tls)
        for fake in fleet._fakes():
            await fake.start()
        faults = faults or {}
        upstreams: dict[str, tuple[str, str, tuple[ssl.SSLContext, ssl.SSLContext] | None]]
        upstreams = {name: (hook.url.removesuffix("/hook"), "webhook", None)
                     for name, hook in fleet.hooks.items() if hooks[name].proxied}
        upstreams |= {
            "mastodon": (fleet.mastodon.url, "mastodon", None),
            "x": (fleet.x.url, "x", (tls.server_context(), tls.client_context())),
            "facebook": (fleet.facebook.url, "facebook", None),
            "bluesky": (fleet.bluesky.url, "bluesky", None),
        }
        for name, (upstream, style, context) in upstreams.items():
            proxy = FaultProxy(upstream, random.Random(rng.random()), delay=delay,
                               faults=faults.get(name), timeout=channel_timeout,
                               retry=retry_headers(style), tls=context)
            await proxy.start()
            fleet.proxies[name] = proxy
        return fleet

    async def stop(self) -> None:
        for proxy in self.proxies.values():
            await proxy.stop()
        for fake in self._fakes():
            await fake.stop()

    def _fakes(self) -> list[WebhookReceiver | MastodonServer | XServer | FakeGraph | FakeBluesky]:
        return [*self.hooks.values(), self.mastodon, self.x, self.facebook, self.bluesky]

    @property
    def channel_names(self) -> list[str]:
        return [*self.hooks, *PLATFORMS]

    @property
    def faults_injected(self) -> int:
        return sum(sum(p.injected.values()) for p in self.proxies.values())

    def holding(self) -> int:
        """POSTs a platform has taken whose answer a proxy still holds back."""
        return sum(p.holding for p in self.proxies.values())

    # -- statusd's side ----------------------------------------------------------------------

    def channels(self, timeout: str = "1s", only: tuple[str, ...] | None = None) -> str:
        """The `channels:` entries of statusd.yaml for every fake (or those named in `only`)."""
        lines = []
        for name, hook in self.hooks.items():
            url = self.proxies[name].url + "/hook" if name in self.proxies else hook.url
            lines.append(f"  {name}: {{type: webhook, language: {self.hook_languages[name]},"
                         f" url: '{url}', secret: {{env: HOOK_SECRET}}, timeout: {timeout}}}")
        p, tls = self.proxies, self.tls
        lines += [
            f"  mastodon: {{type: mastodon, language: fr, instance: '{p['mastodon'].url}',"
            f" token: {{env: MASTODON_TOKEN}}, timeout: {timeout}, events: {_STAFF_EVENTS}}}",
            f"  x: {{type: x, language: en, connect_to: '{p['x'].connect_to}', ca_file: '{tls.ca_file}',"
            " consumer_key: {env: X_CONSUMER_KEY}, consumer_secret: {env: X_CONSUMER_SECRET},"
            " access_token: {env: X_ACCESS_TOKEN}, access_token_secret: {env: X_ACCESS_SECRET},"
            # The fake X keeps no daily cap: lift the free tier's 17 posts a day for the burst.
            f" timeout: {timeout}, budget: {{per_day: 100000}}, events: {_STAFF_EVENTS}}}",
            f"  facebook: {{type: facebook, language: fr, graph_url: '{p['facebook'].url}/v21.0',"
            f" page_id: '{self.facebook.page_id}', token: {{env: FB_TOKEN}}, timeout: {timeout},"
            f" events: {_STAFF_EVENTS}}}",
            f"  bluesky: {{type: bluesky, language: en, service: '{p['bluesky'].url}',"
            f" handle: {self.bluesky.handle}, app_password: {{env: BSKY_PASSWORD}},"
            f" timeout: {timeout}, events: {_STAFF_EVENTS}}}",
        ]
        if only is not None:
            lines = [line for line in lines if line.split(":", 1)[0].strip() in only]
        return "\n".join(lines)

    # -- what each platform holds ------------------------------------------------------------

    def posts(self, channel: str) -> list[Post]:
        """The live posts of one channel, oldest first."""
        if channel in self.hooks:
            return [Post(a.remote_id, str(a.body.get("event_id")))
                    for a in self.hooks[channel].arrivals]
        texts: list[tuple[str, str]]
        if channel == "mastodon":
            texts = [(str(s["id"]), str(s["text"])) for s in self.mastodon.posts]
        elif channel == "x":
            texts = [(str(t["id"]), str(t["text"])) for t in self.x.posts]
        elif channel == "facebook":
            items = sorted([*self.facebook.live_posts(), *(c for c in self.facebook.comments if not c.deleted)],
                           key=lambda p: p.created)
            return [Post(p.id, tag_of(p.message or "") or (p.message or ""),
                         f"comment on {p.parent}" if p.parent else "feed post") for p in items]
        elif channel == "bluesky":
            texts = [(p.uri, str(p.record.get("text", ""))) for p in self.bluesky.posts]
        else:
            raise KeyError(f"no fake for channel {channel!r}")
        return [Post(key, tag_of(text) or text) for key, text in texts]

    def identity(self, channel: str, event_id: str, text: str) -> str:
        """What identifies a delivery's update on this channel (see Post)."""
        return event_id if channel in self.hooks else (tag_of(text) or text)

    @staticmethod
    def key(channel: str, remote_id: str) -> str:
        """A delivery's remote id reduced to the post's key (Bluesky's is "uri|cid")."""
        return remote_id.split("|", 1)[0] if channel == "bluesky" else remote_id
