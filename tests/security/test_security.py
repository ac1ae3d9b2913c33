"""Security (issue 6): closed by default, secrets never shown, templates sandboxed, ingest guarded.

Helpers live in tests/security/: `leaks` (recognisable secrets and a scanner
for every form they travel in), `world` (every channel type and feed secret
against the fakes), `probe` (raw requests and a picture of the daemon's state).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd import loading
from statusd.compose.composer import Composer, TemplateProblem
from statusd.config.feeds import Decoding, FeedsConfig, HttpFeedConfig
from statusd.config.load import Config
from statusd.config.types import Secret
from statusd.events import Event, EventKind
from statusd.model import Level, Target
from statusd.sources.feeds import http as ingest
from statusd.sources.readings import Reading
from tests.conftest import ALERTS, BASE, CONSOLE
from tests.security.leaks import Scanner, make_secret
from tests.security.probe import Picture, delivery_rows, picture, send
from tests.security.world import World, run_on_terminal, world
from tests.support.daemon import Daemon

pytestmark = pytest.mark.e2e

# -- 1. unauthenticated requests change nothing ------------------------------------------------

FEED_TOKEN = make_secret("feed_token")
PANEL_TOKEN = make_secret("panel_token")
MARKER = f"config-marker-{uuid.uuid4().hex}"  # a line of statusd.yaml that must never be served
FEEDS = f"""
# {MARKER}
feeds:
  counters: {{type: http, token: {{env: SECURITY_FEED_TOKEN}}}}
  panel: {{type: http, token: {{env: SECURITY_PANEL_TOKEN}}, allow: [status]}}
"""
READING = json.dumps({"site": "main", "zone": "floor2", "occupied": 120}).encode()
CLOSE = json.dumps({"site": "main", "level": "closed", "reason": "fire alarm"}).encode()
PUBLIC = ["/", "/status.json", "/events", "/feed.atom", "/closures.ics", "/cap.xml", "/banner.js",
          "/static/banner.js", "/healthz", "/api/openapi.json"]
OPERATOR = ["/readyz", "/metrics"]  # on the operator's listener only
ROUTES = [*PUBLIC, *OPERATOR, "/api/v1/readings", "/api/v1/readings/", "/api/v1/status", "/api/v2/readings",
          "/admin", "/cap/unknown.xml", "/static/../statusd.yaml", "/static/..%2f..%2fstatusd.yaml",
          "/static/%2e%2e/%2e%2e/status.yaml", "//api/v1/readings", "/API/V1/READINGS"]
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Guarded:
    """A running daemon with two HTTP feeds, and where its state lives."""

    daemon: Daemon
    status_file: Path
    store: Path

    def picture(self) -> Picture:
        return picture(self.daemon.port, self.daemon.ops_port, self.status_file, self.store)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    directory = tmp_path_factory.mktemp("guarded")
    config = directory / "statusd.yaml"
    config.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h") + FEEDS, encoding="utf-8")
    (directory / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
    env = {"SECURITY_FEED_TOKEN": FEED_TOKEN.value, "SECURITY_PANEL_TOKEN": PANEL_TOKEN.value}
    daemon = Daemon(config, directory / "state", env=env).start()
    try:
        yield Guarded(daemon, directory / "status.yaml", directory / "state" / "statusd.db")
    finally:
        daemon.kill()


def _one_off(token: str) -> st.SearchStrategy[str]:
    """The token with one character changed, dropped or added: the closest wrong guesses."""
    def change(i: int, c: str) -> str:
        i %= len(token)
        return token[:i] + (c if c != token[i] else chr(ord(c) + 1)) + token[i + 1:]

    alphabet = st.characters(min_codepoint=33, max_codepoint=126)
    return st.one_of(
        st.builds(change, st.integers(0, 200), alphabet),
        st.integers(0, len(token) - 1).map(lambda i: token[:i] + token[i + 1:]),
        alphabet.map(lambda c: token + c),
        alphabet.map(lambda c: c + token),
        st.just(token.lower()), st.just(token.upper()), st.just(token[:-3]),
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
AUTHORIZATION = st.one_of(
    st.none(),
    _one_off(FEED_TOKEN.value).map(lambda t: f"Bearer {t}"),
    _one_off(PANEL_TOKEN.value).map(lambda t: f"Bearer {t}"),
    _one_off(FEED_TOKEN.value).map(lambda t: _basic("sensor", t)),
    _PRINTABLE.map(lambda t: f"Bearer {t}"),
    _PRINTABLE.map(lambda t: _basic("sensor", t)),
    st.sampled_from([
        "Bearer", "Bearer ", "Bearer  ", "bearer", "Basic", "Basic !!!", "Basic ====",
        "Basic " + base64.b64encode(b"no-colon").decode(), _basic("sensor", ""),
        _basic(FEED_TOKEN.value, ""),  # the token as a user name, no password
        f"Token {FEED_TOKEN.value}", f"Digest {FEED_TOKEN.value}", f"{FEED_TOKEN.value}",
        f"Bearer{FEED_TOKEN.value}", f"Bearer {FEED_TOKEN.value[:len(FEED_TOKEN.value) // 2]}",
        f"Bearer {base64.b64encode(FEED_TOKEN.value.encode()).decode()}",
    ]),
    _PRINTABLE,
)
SEGMENT = st.one_of(
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-._~!$&'()*+,;=:@%"), max_size=12),
    st.sampled_from(["..", "%2e%2e", "%2F", "api", "v1", "readings", "static", "cap", "statusd.yaml",
                     "status.yaml", "state", "statusd.db", "etc", "passwd", "admin", "metrics"]),
)
PATH = st.one_of(
    st.sampled_from(ROUTES),
    st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
).flatmap(lambda path: st.one_of(
    st.just(path),
    _PRINTABLE.map(lambda q: path + "?" + q.replace(" ", "+").replace("#", "%23")),
))
METHOD = st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE",
                          "PROPFIND", "MKCOL", "FOO"])
HEADER_NAME = st.sampled_from(["Content-Type", "Accept", "Accept-Language", "Cookie", "Origin",
                               "X-Forwarded-For", "X-Real-IP", "If-None-Match", "Last-Event-ID",
                               "X-Statusd-Token", "X-Api-Key", "Proxy-Authorization", "Range",
                               "X-HTTP-Method-Override", "Transfer-Encoding-Hint"])
HEADERS = st.dictionaries(HEADER_NAME, st.one_of(
    _PRINTABLE, st.sampled_from(["application/json", "application/vnd.statusd+json", "text/plain",
                                 "multipart/form-data; boundary=x", FEED_TOKEN.value[:-1], "POST", "PUT"])),
    max_size=4)
BODY = st.one_of(st.none(), st.just(READING), st.just(CLOSE), st.binary(max_size=512),
                 st.just(json.dumps({"readings": [json.loads(READING)] * 3}).encode()))


class TestUnauthenticatedRequests:
    """Whatever an unauthenticated client sends, nothing changes, nothing leaks, and no 5xx comes back."""

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(method=METHOD, path=PATH, headers=HEADERS, authorization=AUTHORIZATION, body=BODY)
    def test_never_changes_state(self, guarded: Guarded, method: str, path: str, headers: dict[str, str],
                                 authorization: str | None, body: bytes | None) -> None:
        if authorization is not None:
            headers = {**headers, "Authorization": authorization}
        before = guarded.picture()
        answer = send(guarded.daemon.port, method, path, headers, body)
        assert answer.status < 500, answer.text
        after = guarded.picture()
        assert after == before, f"{method} {path} {headers} changed the daemon's state: {answer.text}"
        for leaked in (FEED_TOKEN.value, PANEL_TOKEN.value, MARKER):
            assert leaked not in answer.text, f"{method} {path} answered a secret or the config"
        assert b"SQLite format" not in answer.body

    @pytest.mark.parametrize("method", WRITES)
    @pytest.mark.parametrize("path", PUBLIC)
    def test_public_endpoints_only_read(self, guarded: Guarded, path: str, method: str) -> None:
        before = guarded.picture()
        answer = send(guarded.daemon.port, method, path, {"Content-Type": "application/json"}, READING)
        assert answer.status == 405, answer.text
        allowed = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        assert allowed <= {"GET", "HEAD", "OPTIONS"}, answer.headers
        assert guarded.picture() == before

    @pytest.mark.parametrize("path", PUBLIC)
    def test_public_endpoints_answer_reads(self, guarded: Guarded, path: str) -> None:
        """The 405s above are refusals of the method, not missing routes."""
        for method in ("GET", "HEAD"):
            answer = send(guarded.daemon.port, method, path)
            assert answer.status == 200, f"{method} {path}: {answer.text}"

    @pytest.mark.parametrize("path", OPERATOR)
    def test_operator_endpoints_are_not_public(self, guarded: Guarded, path: str) -> None:
        """/readyz and /metrics answer on the operator's port, and are unknown on the public one."""
        assert send(guarded.daemon.port, "GET", path).status == 404
        assert send(guarded.daemon.ops_port, "GET", path).status == 200

    def test_the_oracle_sees_a_real_reading(self, guarded: Guarded) -> None:
        """The check above can fail: an authenticated reading does change the picture."""
        before = guarded.picture()
        answer = send(guarded.daemon.port, "POST", "/api/v1/readings",
                      {"Authorization": f"Bearer {FEED_TOKEN.value}", "Content-Type": "application/json"},
                      READING)
        assert answer.status == 202, answer.text
        deadline = time.monotonic() + 5
        while guarded.picture().etag == before.etag and time.monotonic() < deadline:
            time.sleep(0.1)
        after = guarded.picture()
        assert after.etag != before.etag and after.readings != before.readings
        assert b"floor2" in after.status_json


# -- 2. secrets never appear anywhere ----------------------------------------------------------

Outputs = dict[str, "str | bytes | None"]
CHANNELS = 12  # console, five that post, five refused, one with a line end pasted into its secret


@dataclass
class Exposure:
    """Everything statusd showed while running with every secret configured, by area."""

    world: World
    areas: dict[str, Outputs]
    deliveries: list[tuple[str, str, str | None, str | None]]

    def scan(self, area: str) -> Scanner:
        scanner = Scanner(self.world.secrets.values())
        scanner.scan_all(self.areas[area])
        return scanner


def _wait(done: Callable[[], bool], what: str, facts: Callable[[], object] = lambda: "",
          timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s: {what} {facts()}")
        time.sleep(0.1)


def _settled(store: Path, at_least: int) -> Callable[[], bool]:
    def done() -> bool:
        if not store.exists():
            return False
        rows = delivery_rows(store)
        # A secret with a line end pasted in is retried as if the platform were unreachable.
        return len(rows) >= at_least and all(state in ("sent", "failed") for channel, state, _, _ in rows
                                             if not channel.endswith("-newline"))
    return done


def _requests(w: World, port: int, ops_port: int) -> Outputs:
    feed = w.secrets["feed_token"].value
    bearer = {"Authorization": f"Bearer {feed}", "Content-Type": "application/json"}
    post = "/api/v1/readings"
    cases: dict[str, tuple[str, str, dict[str, str], bytes | None]] = {
        "no token": ("POST", post, {"Content-Type": "application/json"}, READING),
        "wrong token": ("POST", post, {"Authorization": f"Bearer {feed[:-1]}x"}, READING),
        "wrong basic": ("POST", post, {"Authorization": _basic("sensor", feed[:-1])}, READING),
        "bad json": ("POST", post, bearer, b"{"),
        "wrong type": ("POST", post, {**bearer, "Content-Type": "text/plain"}, READING),
        "unknown zone": ("POST", post, bearer, b'{"site": "main", "zone": "attic", "occupied": 3}'),
        "not allowed": ("POST", post, bearer, CLOSE),
        "too big": ("POST", post, bearer, b" " * (ingest.MAX_BODY + 1)),
        "good": ("POST", post, bearer, READING),
    }
    answers: Outputs = {}
    for name, (method, path, headers, body) in cases.items():
        answers[f"ingest {name}"] = send(port, method, path, headers, body).text
    burst = [send(port, "POST", post, bearer, READING) for _ in range(150)]
    answers["ingest burst"] = "\n".join(sorted({a.text for a in burst if a.status != 202}))
    for path in ["/status.json", "/", "/?lang=en", "/?lang=sv", "/feed.atom", "/cap.xml",
                 "/closures.ics", "/healthz", "/api/openapi.json", "/banner.js"]:
        answers[f"GET {path}"] = send(port, "GET", path).text
    for path in OPERATOR:
        answers[f"GET {path} (operator)"] = send(ops_port, "GET", path).text
    return answers


def _first_event(port: int) -> str:
    async def read() -> str:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/events") as response:
                seen = ""
                while "data:" not in seen:
                    seen += (await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)).decode()
                return seen
    return asyncio.run(read())


def _cli(daemon: Daemon) -> Outputs:
    out: Outputs = {}
    for args in (["show"], ["history"], ["check"], ["check", "--live"],
                 ["preview", "main", "emergency", "-m", "fr:Évacuation", "-m", "en:Evacuation"],
                 ["set", "main/wifi", "limited", "-m", "en:Slow"], ["undo"]):
        result = daemon.cli(*args, check=False)
        out[f"statusd {' '.join(args)}"] = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return out


def _crash(w: World, daemon: Daemon) -> Outputs:
    """A second daemon on the same port fails at start: what it prints."""
    assert w.config is not None
    result = subprocess.run(
        [sys.executable, "-m", "statusd", "--config", str(w.config), "--state-dir", str(w.directory / "crash"),
         "run", "--port", str(daemon.port), "--ops-port", "0"],
        capture_output=True, text=True, env={**os.environ, **w.env}, cwd=w.directory, timeout=60)
    return {"crash (port in use)": f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"}


def _files(directory: Path) -> Outputs:
    return {f"file {p.relative_to(directory.parent)}": p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _published(w: World) -> Outputs:
    """What the platforms received: the posts the public reads."""
    return {
        "mastodon posts": json.dumps(list(w.mastodon.statuses.values()), default=str),
        "x posts": json.dumps(list(w.x.tweets.values()), default=str),
        "facebook posts": json.dumps([vars(p) for p in w.facebook.posts], default=str),
        "bluesky posts": json.dumps([vars(p) for p in w.bluesky.posts], default=str),
        "webhook posts": json.dumps(w.webhook.received, default=str),
    }


def _expose(directory: Path) -> Exposure:
    async def run() -> Exposure:
        async with world(directory) as w:
            return await asyncio.to_thread(_exercise, w)
    return asyncio.run(run())


def _exercise(w: World) -> Exposure:
    assert w.config is not None
    daemon = w.daemon().start()
    store = w.state_dir / "statusd.db"
    areas: dict[str, Outputs] = {}
    try:
        _wait(lambda: w.bluesky.session_creates >= 1, "the Bluesky channel logged in")
        daemon.cli("set", "main", "closed", "-m", "fr:Incendie : fermé.", "-m", "en:Fire: closed.",
                   "-m", "sv:Brand: stängt.")
        _wait(_settled(store, CHANNELS), "every delivery sent or failed", lambda: delivery_rows(store))
        areas["web"] = {**_requests(w, daemon.port, daemon.ops_port), "GET /events": _first_event(daemon.port)}
        areas["cli"] = _cli(daemon)
        areas["crash"] = _crash(w, daemon)
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        _wait(lambda: "config_reloaded" in daemon.logs(), "the daemon reloaded its config")
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
    deliveries = delivery_rows(store)
    areas["store"] = {**_files(w.state_dir),
                      **{f"last_error {ch}": err for ch, _, err, _ in deliveries},
                      **{f"message {ch}": msg for ch, _, _, msg in deliveries}}
    areas["published"] = _published(w)
    console = run_on_terminal(["--config", str(w.config), "--state-dir", str(w.directory / "console-state"),
                               "run", "--port", "0", "--ops-port", "0"], w.env, w.directory, seconds=30,
                              ready=lambda seen: seen.count("delivery_failed") >= 7)
    areas["logs"] = {"daemon log (JSON)": daemon.logs(), "daemon stdout": daemon.out.read_text(errors="replace"),
                     "daemon log (console)": console}
    return Exposure(w, areas, deliveries)


@pytest.fixture(scope="module")
def exposure(tmp_path_factory: pytest.TempPathFactory) -> Exposure:
    return _expose(tmp_path_factory.mktemp("exposure"))


class TestSecretsNeverShow:
    """Every channel and feed secret is set to a recognisable value; no output holds one, in any form."""

    @pytest.mark.parametrize("area", ["logs", "cli", "web", "crash", "store", "published"])
    def test_no_secret_in(self, exposure: Exposure, area: str) -> None:
        scanner = exposure.scan(area)
        assert scanner.findings == [], scanner.report()

    def test_the_run_went_through_every_path(self, exposure: Exposure) -> None:
        """The scans above saw real failures and successes, so their silence means something."""
        states = {channel: state for channel, state, _, _ in exposure.deliveries}
        for good in ("mastodon", "x", "facebook", "bluesky", "webhook"):
            assert states[good] == "sent", exposure.deliveries
        for bad in ("mastodon-bad", "x-bad", "facebook-bad", "bluesky-bad", "webhook-bad"):
            assert states[bad] == "failed", exposure.deliveries
        errors = {channel: error for channel, _, error, _ in exposure.deliveries}
        assert states["mastodon-newline"] != "sent" and errors["mastodon-newline"], exposure.deliveries
        logs = str(exposure.areas["logs"]["daemon log (JSON)"])
        assert "delivery_failed" in logs and "feed_disconnected" in logs and "poll_failed" in logs
        console = str(exposure.areas["logs"]["daemon log (console)"])
        assert "delivery_failed" in console and not console.lstrip().startswith("{")
        web = exposure.areas["web"]
        assert str(web["ingest no token"]).startswith("401") and str(web["ingest too big"]).startswith("413")
        assert str(web["ingest good"]).startswith("202") and "429" in str(web["ingest burst"])
        assert "CANNOT POST" in str(exposure.areas["cli"]["statusd check --live"])
        assert "exit 0" not in str(exposure.areas["crash"]["crash (port in use)"])

    def test_scanner_finds_every_form(self, exposure: Exposure) -> None:
        """The scanner itself: each secret is found raw, cut short, URL-encoded and in a Basic header."""
        secret = exposure.world.secrets["poll_password"]
        for form in secret.forms().values():
            scanner = Scanner([secret])
            scanner.scan("sample", f"Authorization: Basic x\n{form}\n")
            assert scanner.findings, form


class TestMalformedSecret:
    """A secret pasted with its line end makes its channel fail clearly; the daemon and its secret stay safe."""

    async def test_daemon_survives_and_says_nothing(self, tmp_path: Path) -> None:
        from tests.support.fakes.facebook import FakeGraph

        secret = make_secret("facebook_newline")
        async with FakeGraph(token=secret.value) as graph:
            config = tmp_path / "statusd.yaml"
            channel = (f"  facebook: {{type: facebook, language: fr, graph_url: '{graph.graph_url}',"
                       f" page_id: '{graph.page_id}', token: {{env: FB_PASTED}}}}")
            config.write_text(BASE.format(alerts=ALERTS, channels=f"{CONSOLE}\n{channel}", deadline="1h"),
                              encoding="utf-8")
            (tmp_path / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
            daemon = Daemon(config, tmp_path / "state", env={"FB_PASTED": secret.value + "\n"}).start()
            try:
                await asyncio.to_thread(daemon.cli, "set", "main", "closed", "-m", "fr:Fermé.")
                await asyncio.sleep(4)  # a few attempts, with the test config's 0.05-0.5 s backoff
                assert daemon.proc is not None
                alive = daemon.proc.poll() is None
                scanner = Scanner([secret])
                scanner.scan("daemon log", daemon.logs())
                scanner.scan("statusd show", (await asyncio.to_thread(daemon.cli, "show")).stdout)
                assert alive, f"the daemon died of a malformed secret:\n{daemon.logs()[-3000:]}"
                assert scanner.findings == [], scanner.report()
            finally:
                daemon.kill()


# -- 3. templates run sandboxed ----------------------------------------------------------------

TEMPLATE_SECRET = make_secret("template_env")
ESCAPES = [
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ joiner.__init__.__globals__.os.environ }}",
    "{{ namespace.__init__.__globals__.os.environ }}",
    "{{ at.__class__.__init__.__globals__ }}",
    "{{ message.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ at.__dict__ }}",
    "{{ at._private }}",
    "{{ message|attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(message) }}",
    "{{ '{0.__class__}'.format_map([message]) }}",
    "{% include '/etc/passwd' %}",
    "{% include '/proc/self/environ' %}",
    "{% import '../../etc/passwd' as x %}",
    "{% extends '../../../../etc/passwd' %}",
    "{% include '../statusd.yaml' %}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ environ }}",
    "{{ os }}",
    "{{ request }}",
    "{{ range(10**9)|list }}",
    "{% for x in range(10**9) %}{% endfor %}",
    "{{ 9**(9**9) }}",
    "{{ [1] * 10**9 }}",
    "{{ message * 10**8 }}",
]
# Bombs that would take the daemon's memory or minutes of its time.
BOMBS = [
    "{{ lipsum(10**7) }}",
    "{{ message.ljust(10**9) }}",
    "{{ message|center(10**9) }}",
    "{{ 'x'.zfill(10**9) }}",
]


@pytest.fixture
def sandboxed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Config]:
    """A config whose alerts/ is a private copy; call it with a template to put in for console."""
    alerts = Path(shutil.copytree(ALERTS, tmp_path / "alerts"))
    (tmp_path / "secret.txt").write_text(TEMPLATE_SECRET.value + "\n", encoding="utf-8")
    monkeypatch.setenv("STATUSD_TEMPLATE_SECRET", TEMPLATE_SECRET.value)
    config = tmp_path / "statusd.yaml"
    config.write_text(BASE.format(alerts=alerts, channels=CONSOLE, deadline="1h"), encoding="utf-8")
    (tmp_path / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")

    def with_template(text: str) -> Config:
        (alerts / "console").mkdir(exist_ok=True)
        (alerts / "console" / "status_changed.fr.j2").write_text(text, encoding="utf-8")
        return loading.load(config)

    return with_template


def _event() -> Event:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return Event(EventKind.STATUS_CHANGED, Target("main"), Level.CLOSED, Level.OPEN,
                 {"fr": "Fermé."}, now, "desk", "r1")


def _render(config: Config) -> str:
    return Composer(config).render(_event(), config.channels["console"], None, len).text


def _no_secret_or_file(text: str) -> None:
    assert TEMPLATE_SECRET.value not in text and TEMPLATE_SECRET.fragment not in text
    assert "root:x:0:0" not in text and "PATH=" not in text and "public_url" not in text


class TestTemplateSandbox:
    """A template edit cannot read files, the environment or Python internals, nor exhaust the daemon."""

    @pytest.mark.parametrize("template", ESCAPES)
    def test_escape_is_refused(self, sandboxed: Callable[[str], Config], template: str) -> None:
        config = sandboxed(template)
        with pytest.raises(TemplateProblem) as caught:
            _render(config)
        assert "status_changed.fr.j2" in caught.value.problem.file
        _no_secret_or_file(str(caught.value))

    @pytest.mark.parametrize("template", BOMBS)
    def test_bomb_is_refused_quickly(self, sandboxed: Callable[[str], Config], template: str) -> None:
        config = sandboxed(template)
        # In a child process with 1 GiB of address space, so a bomb that works cannot take the suite.
        code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
                "from pathlib import Path\n"
                "from statusd import loading as c\n"
                "from tests.security.test_security import _render\n"
                "from statusd.compose.composer import TemplateProblem\n"
                "try:\n    _render(c.load(Path(sys.argv[1])))\n"
                "except TemplateProblem as err:\n    print('refused:', err); sys.exit(0)\n"
                "print('rendered'); sys.exit(1)\n")
        try:
            done = subprocess.run([sys.executable, "-c", code, str(config.path)], capture_output=True,
                                  text=True, timeout=20, cwd=Path(__file__).parent.parent.parent)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{template} kept the renderer busy for over 20 s")
        # Refused by the sandbox, not by running out of the child's memory (the daemon has no such cap).
        refused = done.returncode == 0 and "refused:" in done.stdout and "MemoryError" not in done.stdout
        assert refused, (done.returncode, done.stdout[-500:], done.stderr[-1500:])

    def test_environment_is_not_a_variable(self, sandboxed: Callable[[str], Config]) -> None:
        """Every name a template sees is listed, and none of them holds the environment."""
        config = sandboxed("{% for k in self._TemplateReference__context %}{{ k }} {% endfor %}"
                           "{{ site }} {{ message }} {{ link }}")
        try:
            text = _render(config)
        except TemplateProblem as err:
            text = str(err)
        _no_secret_or_file(text)

    def test_symlink_out_of_alerts_is_not_read(self, sandboxed: Callable[[str], Config], tmp_path: Path) -> None:
        """A link in alerts/ to a credential file must not carry the secret into a public post."""
        config = sandboxed("{% include 'signature.j2' %}")
        (tmp_path / "alerts" / "signature.j2").symlink_to(tmp_path / "secret.txt")
        try:
            text = _render(config)
        except TemplateProblem as err:
            text = str(err)
        _no_secret_or_file(text)

    @pytest.mark.parametrize("template", ["{{ lipsum.__globals__['os'].environ }}", "{% include '/etc/passwd' %}",
                                          "{{ range(10**9)|list }}", "{{ self.__init__.__globals__ }}"])
    def test_commands_report_cleanly(self, sandboxed: Callable[[str], Config], template: str) -> None:
        config = sandboxed(template)
        env = {**os.environ, "STATUSD_TEMPLATE_SECRET": TEMPLATE_SECRET.value}
        for args, code in ((["check"], 1), (["preview", "main", "closed", "-m", "fr:Fermé."], 0)):
            done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(config.path),
                                   "--state-dir", str(config.path.parent / "state"), *args],
                                  capture_output=True, text=True, env=env, timeout=60)
            output = done.stdout + done.stderr
            assert done.returncode == code, output
            assert "Traceback" not in output and "status_changed.fr.j2" in output, output
            _no_secret_or_file(output)


# -- 4. the ingest endpoint --------------------------------------------------------------------

TOKENS = {"counters": "counters-" + "a1" * 20, "panel": "panel-" + "b2" * 20, "door": "door-" + "c3" * 20}


class Ingest:
    """The ingest routes in-process, with an intake that records what it is given."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.received: list[list[Reading]] = []

    async def post(self, token: str | None, body: bytes = READING,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        response = await self.client.post("/api/v1/readings", data=body, headers=sent)
        return response.status, await response.json(), dict(response.headers)


@pytest.fixture
async def api(config: Config, monkeypatch: pytest.MonkeyPatch) -> Any:
    feeds: dict[str, HttpFeedConfig] = {}
    for name, token in TOKENS.items():
        monkeypatch.setenv(f"SEC_{name.upper()}", token)
        allow = frozenset({"status"}) if name == "panel" else frozenset({"seats", "queue", "gates"})
        feeds[name] = HttpFeedConfig(name, allow, Decoding(), Secret("env", f"SEC_{name.upper()}"))
    app = web.Application()
    holder: list[Ingest] = []
    ingest.add_routes(app, config, FeedsConfig(feeds), lambda readings: holder[0].received.append(readings))
    async with TestClient(TestServer(app)) as client:
        holder.append(Ingest(client))
        yield holder[0]


def _same_length_wrong(token: str) -> list[str]:
    """Tokens as long as `token` that differ from it at the start, the middle and the end only."""
    out = []
    for i in (0, len(token) // 2, len(token) - 1):
        out.append(token[:i] + ("x" if token[i] != "x" else "y") + token[i + 1:])
    return out


class TestIngestGuard:
    """Tokens are compared in constant time, bodies are bounded, and each token is rate limited."""

    async def test_close_guesses_are_refused_like_any_other(self, api: Ingest) -> None:
        token = TOKENS["counters"]
        guesses = [*_same_length_wrong(token), token[:-1], token + "0", "x", token.upper(), TOKENS["counters"][::-1]]
        answers = [await api.post(guess) for guess in guesses]
        statuses_and_bodies = {(status, json.dumps(body, sort_keys=True)) for status, body, _ in answers}
        assert len(statuses_and_bodies) == 1 and answers[0][0] == 401, answers
        assert all(h.get("WWW-Authenticate", "").startswith("Bearer") for _, _, h in answers)
        assert api.received == []
        assert (await api.post(token))[0] == 202  # the control: the real token works

    async def test_every_token_is_compared_with_compare_digest(self, api: Ingest,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        """No early exit on the first match, and no `==`: the time taken tells nothing of which feed."""
        calls: list[tuple[bytes, bytes]] = []
        compare = hmac.compare_digest

        def spy(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return compare(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)  # the module ingest.py calls it through
        assert (await api.post(TOKENS["counters"]))[0] == 202
        assert (await api.post(_same_length_wrong(TOKENS["door"])[1]))[0] == 401
        assert len(calls) == 2 * len(TOKENS), calls
        assert {b for _, b in calls} == {t.encode() for t in TOKENS.values()}

    @pytest.mark.parametrize("chunked", [False, True])
    async def test_body_over_the_limit(self, api: Ingest, chunked: bool) -> None:
        big = b" " * (ingest.MAX_BODY + 1)

        async def body() -> Any:
            for at in range(0, len(big), 65536):
                yield big[at:at + 65536]

        response = await api.client.post("/api/v1/readings", data=body() if chunked else big, headers={
            "Authorization": f"Bearer {TOKENS['counters']}", "Content-Type": "application/json"})
        assert response.status == 413 and api.received == []

    async def test_unauthenticated_body_is_refused_before_reading(self, api: Ingest) -> None:
        status, body, _ = await api.post("wrong", b" " * (ingest.MAX_BODY + 1))
        assert status == 401 and body["field"] == "Authorization"

    async def test_rate_limit_per_token(self, api: Ingest) -> None:
        answers = [await api.post(TOKENS["counters"]) for _ in range(300)]
        limited = [(status, headers) for status, _, headers in answers if status == 429]
        accepted = sum(1 for status, _, _ in answers if status == 202)
        assert limited, "300 requests at once with one token were all accepted: no rate limit"
        assert all(int(h.get("Retry-After", "0")) >= 1 for _, h in limited), limited[:3]
        assert len(api.received) == accepted  # a refused request stores nothing
        # Another feed's token is not slowed by the first one's burst.
        assert (await api.post(TOKENS["door"]))[0] == 202

    async def test_wrong_tokens_do_not_spend_a_feeds_allowance(self, api: Ingest) -> None:
        """A stranger hammering with guesses cannot lock a real sensor out."""
        for _ in range(300):
            await api.post(_same_length_wrong(TOKENS["counters"])[0])
        assert (await api.post(TOKENS["counters"]))[0] == 202
