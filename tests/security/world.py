"""Every channel type and every kind of feed secret, configured with recognisable secrets.

Good channels post to the fakes in tests/support/fakes/ with the secrets those fakes
expect; `-bad` channels hold secrets the fakes refuse (401s whose bodies echo
nothing back), so error paths run with a secret in hand too. Secrets come from
the environment, a systemd credential and a file, as a sysadmin would set them.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ALERTS
from tests.security.leaks import Secret, make_secret
from tests.support.daemon import Daemon
from tests.support.fakes import refusing_port
from tests.support.fakes.bluesky import FakeBluesky
from tests.support.fakes.facebook import FakeGraph
from tests.support.fakes.mastodon import MastodonServer
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.fakes.x import ACCOUNT, Credentials, Tls, XServer, make_tls
from tests.support.mosquitto import Mosquitto

CONFIG = """\
public_url: http://127.0.0.1:8080
languages: [fr, en, sv]
alerts: {alerts}
sites:
  main:
    name: {{fr: Bibliothèque centrale, en: Central Library, sv: Centralbiblioteket}}
    timezone: Europe/Paris
    services: {{wifi: Wi-Fi}}
    zones: {{floor2: {{name: 2e étage, capacity: 240}}}}
    queues: {{entrance: {{name: Entrée}}}}
channels:
  console: {{type: console, language: fr}}
{channels}
feeds:
  counters: {{type: http, token: {{env: FEED_TOKEN}}}}
  broker: {{type: mqtt, host: 127.0.0.1, port: {mqtt_port}, topics: ["library/+/seats"],
            username: statusd, password: {{env: MQTT_PASSWORD}}}}
  gone: {{type: mqtt, host: 127.0.0.1, port: {refusing}, topics: ["library/+/seats"],
          username: statusd, password: {{env: MQTT_PASSWORD}}}}
  axis: {{type: poll, url: "{poll_url}", format: axis-live-sum, site: main, zone: floor2,
          auth: basic, username: counter, password: {{env: POLL_PASSWORD}}, every: 1s}}
  vendor: {{type: poll, url: "{poll_url}", token: {{env: POLL_TOKEN}}, every: 1s}}
delivery:
  deadline: 1h
  backoff: 0.05s
  backoff_max: 0.5s
  timeout: 2s
  reminder: 1d
  grace: 2s
"""


@dataclass
class World:
    """The fakes, the config, the secrets and the environment a daemon needs to use them."""

    directory: Path
    tls: Tls
    mastodon: MastodonServer
    x: XServer
    facebook: FakeGraph
    bluesky: FakeBluesky
    webhook: WebhookReceiver
    refusing_hook: WebhookReceiver  # answers 401 to the bad webhook and to the poll feeds
    broker: Mosquitto
    secrets: dict[str, Secret] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    config: Path | None = None

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    def daemon(self) -> Daemon:
        assert self.config is not None
        return Daemon(self.config, self.state_dir, env=self.env)


def _secrets() -> dict[str, Secret]:
    names = ["mastodon", "mastodon_bad", "x_consumer_key", "x_consumer_secret", "x_access_secret",
             "x_bad_consumer_secret", "facebook", "facebook_bad", "bluesky", "bluesky_bad",
             "webhook", "webhook_bad", "webhook_path", "feed_token", "mqtt_password", "poll_token",
             "mastodon_newline"]
    made = {name: make_secret(name) for name in names}
    made["x_access_token"] = make_secret("x_access_token", prefix=f"{ACCOUNT['id']}-")
    made["poll_password"] = make_secret("poll_password", username="counter")
    return made


def _channels(w: World) -> str:
    x_keys = ("consumer_key: {env: X_CONSUMER_KEY}, access_token: {env: X_ACCESS_TOKEN}, "
              "access_token_secret: {env: X_ACCESS_SECRET}")
    x_where = f"connect_to: '{w.x.connect_to}', ca_file: '{w.tls.ca_file}'"
    return "\n".join([
        f"  mastodon: {{type: mastodon, language: fr, instance: '{w.mastodon.url}', token: {{env: MASTODON_TOKEN}}}}",
        f"  mastodon-bad: {{type: mastodon, language: en, instance: '{w.mastodon.url}', token: {{env: MASTODON_BAD}}}}",
        f"  x: {{type: x, language: en, {x_where}, {x_keys}, consumer_secret: {{env: X_CONSUMER_SECRET}}}}",
        f"  x-bad: {{type: x, language: en, {x_where}, {x_keys}, consumer_secret: {{env: X_BAD_SECRET}}}}",
        f"  facebook: {{type: facebook, language: fr, graph_url: '{w.facebook.graph_url}',"
        f" page_id: '{w.facebook.page_id}', token: {{credential: facebook-token}}}}",
        f"  facebook-bad: {{type: facebook, language: fr, graph_url: '{w.facebook.graph_url}',"
        f" page_id: '{w.facebook.page_id}', token: {{env: FB_BAD}}}}",
        f"  bluesky: {{type: bluesky, language: en, service: '{w.bluesky.url}', handle: {w.bluesky.handle},"
        " app_password: {env: BSKY_PASSWORD}}",
        f"  bluesky-bad: {{type: bluesky, language: en, service: '{w.bluesky.url}', handle: {w.bluesky.handle},"
        " app_password: {env: BSKY_BAD}}",
        f"  mastodon-newline: {{type: mastodon, language: fr, instance: '{w.mastodon.url}',"
        " token: {env: MASTODON_NEWLINE}}",
        # Webhook paths often carry a token (Slack, Discord): the channel promises to show only the host.
        f"  webhook: {{type: webhook, language: fr, url: '{w.webhook.url}/{w.secrets['webhook_path'].value}',"
        f" secret: {{file: {w.directory / 'webhook.secret'}}}}}",
        f"  webhook-bad: {{type: webhook, language: en, url: '{w.refusing_hook.url}', secret: {{env: WEBHOOK_BAD}}}}",
    ])


def _environment(w: World) -> dict[str, str]:
    s = w.secrets
    credentials = w.directory / "credentials"
    credentials.mkdir(exist_ok=True)
    (credentials / "facebook-token").write_text(s["facebook"].value + "\n", encoding="utf-8")
    (w.directory / "webhook.secret").write_text(s["webhook"].value + "\n", encoding="utf-8")
    return {
        "CREDENTIALS_DIRECTORY": str(credentials),
        "MASTODON_TOKEN": s["mastodon"].value, "MASTODON_BAD": s["mastodon_bad"].value,
        "X_CONSUMER_KEY": s["x_consumer_key"].value, "X_CONSUMER_SECRET": s["x_consumer_secret"].value,
        "X_ACCESS_TOKEN": s["x_access_token"].value, "X_ACCESS_SECRET": s["x_access_secret"].value,
        "X_BAD_SECRET": s["x_bad_consumer_secret"].value,
        "FB_BAD": s["facebook_bad"].value,
        "BSKY_PASSWORD": s["bluesky"].value, "BSKY_BAD": s["bluesky_bad"].value,
        "WEBHOOK_BAD": s["webhook_bad"].value,
        # A value pasted with its line end: not a valid HTTP header value any more.
        "MASTODON_NEWLINE": s["mastodon_newline"].value + "\n",
        "FEED_TOKEN": s["feed_token"].value, "MQTT_PASSWORD": s["mqtt_password"].value,
        "POLL_PASSWORD": s["poll_password"].value, "POLL_TOKEN": s["poll_token"].value,
    }


def _refusing_broker(directory: Path) -> Mosquitto:
    """A broker that refuses every login: no anonymous clients and no password file."""
    broker = Mosquitto(directory)
    broker.config.write_text(f"listener {broker.port} 127.0.0.1\nallow_anonymous false\n"
                             "persistence false\n", encoding="utf-8")
    return broker


@asynccontextmanager
async def world(directory: Path) -> AsyncIterator[World]:
    """Start every fake, write statusd.yaml and status.yaml; stop the fakes afterwards."""
    secrets = _secrets()
    tls = make_tls(directory / "tls")
    keys = Credentials(secrets["x_consumer_key"].value, secrets["x_consumer_secret"].value,
                       secrets["x_access_token"].value, secrets["x_access_secret"].value)
    w = World(directory, tls, MastodonServer(token=secrets["mastodon"].value), XServer(tls, keys=keys),
              FakeGraph(token=secrets["facebook"].value), FakeBluesky(password=secrets["bluesky"].value),
              WebhookReceiver(secrets["webhook"].value), WebhookReceiver("other", mode="unauthorized"),
              _refusing_broker(directory), secrets)
    fakes = (w.mastodon, w.x, w.facebook, w.bluesky, w.webhook, w.refusing_hook)
    for fake in fakes:
        await fake.start()
    w.broker.start()
    try:
        w.env = _environment(w)
        w.config = directory / "statusd.yaml"
        w.config.write_text(CONFIG.format(
            alerts=ALERTS, channels=_channels(w), mqtt_port=w.broker.port, refusing=refusing_port(),
            poll_url=w.refusing_hook.url.replace("/hook", "/counter")), encoding="utf-8")
        (directory / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
        yield w
    finally:
        w.broker.stop()
        for fake in fakes:
            await fake.stop()


def run_on_terminal(args: list[str], env: dict[str, str], cwd: Path, seconds: float,
                    ready: Callable[[str], bool] | None = None) -> str:
    """Run `python -m statusd ARGS` with stderr and stdout on a pseudo-terminal, for the
    console (not JSON) log rendering; stop it with SIGTERM after `seconds` or once `ready`
    says the output is enough, and answer everything it wrote."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "statusd", *args], stdin=subprocess.DEVNULL,
                            stdout=terminal, stderr=terminal, cwd=cwd,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    stopping = False
    while True:
        timeout = max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([controller], [], [], min(timeout, 0.2) if not stopping else 0.5)
        if readable:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        seen = b"".join(chunks).decode("utf-8", errors="replace")
        if not stopping and (time.monotonic() >= deadline or (ready is not None and ready(seen))):
            if proc.poll() is None:
                proc.terminate()
            stopping = True
            deadline = time.monotonic() + 10
        if stopping and proc.poll() is not None and not readable:
            break
        if stopping and time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(10)
    os.close(controller)
    return b"".join(chunks).decode("utf-8", errors="replace")


__all__ = ["World", "run_on_terminal", "world"]
