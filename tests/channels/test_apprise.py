"""The Apprise channel through the real Apprise library: a local JSON endpoint and a local SMTP server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.channels import CHANNELS
from statusd.channels.apprise import AppriseChannel
from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig, Secret
from statusd.errors import ConfigError
from statusd.loading import load
from tests.support import channels as support
from tests.support.channels import LINK, ChannelBuilder, linked
from tests.support.fakes import blackhole, refusing_port

pytestmark = pytest.mark.unit

ENV = "TEST_APPRISE_URL"
PASSWORD = "hook-password-9f8e7d"
CHANNEL = """\
  long_tail:
    type: apprise
    language: fr
    url: {{env: {env}}}
    timeout: 1s
"""

MakeChannel = Callable[[str], AppriseChannel]


def message(text: str = "Bibliothèque centrale : fermé. Dégât des eaux 💧") -> Message:
    return support.message(linked(text, LINK))


class JsonReceiver:
    """An HTTP endpoint for Apprise's json:// plugin; keeps what arrived, answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        self.status = 200
        self.hang = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get("Authorization"), await request.json()))
        if self.status == 0:
            await self.hang.wait()
        return web.json_response({"ok": self.status < 300}, status=self.status or 200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/notify/library", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        self.hang.set()
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"json://statusd:{PASSWORD}@127.0.0.1:{self.port}/notify/library"


class Mailbox:
    """An aiosmtpd handler: every accepted mail, parsed; `refuse` answers 550 instead."""

    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, EmailMessage]] = []
        self.refuse = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append((envelope, parsed))
        return "250 OK"


@pytest.fixture
async def receiver() -> AsyncIterator[JsonReceiver]:
    fake = JsonReceiver()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    """A local SMTP server on 127.0.0.1 (port 0) in the test's loop: the mailbox and its port."""
    box = Mailbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(box, hostname="mail.bib.test"),
                                                           "127.0.0.1", 0)
    yield box, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
def make_channel(write_config: Callable[..., Path], channel_builder: ChannelBuilder) -> MakeChannel:
    """Apprise channels built from a statusd.yaml, the URL in an environment variable."""

    def make(url: str) -> AppriseChannel:
        path = write_config(channels=CHANNEL.format(env=ENV))
        return channel_builder.build(path, "long_tail", AppriseChannel, {ENV: url})

    return make


async def post(channel: AppriseChannel, sample: Message | None = None, reply_to: Reply | None = None) -> Sent:
    return await channel.send(sample or message(), idempotency_key="delivery-0001", reply_to=reply_to)


class TestConfig:
    """The URL is a secret by reference: never in statusd.yaml, off while unset, refused when not Apprise's."""

    def test_registered(self) -> None:
        assert CHANNELS["apprise"] is AppriseChannel
        assert (AppriseChannel.kind, AppriseChannel.honours_idempotency) == ("apprise", False)

    def test_url_unset_makes_it_inactive(self, write_config: Callable[..., Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(ENV, raising=False)
        config = load(write_config(channels=CHANNEL.format(env=ENV)))
        assert config.inactive["long_tail"] == f"off until environment variable {ENV} is set"

    def test_url_written_in_the_file_is_refused(self, write_config: Callable[..., Path]) -> None:
        channels = "  long_tail: {type: apprise, url: 'json://user:pw@127.0.0.1/x'}"
        with pytest.raises(ConfigError, match=r"secrets are never written in statusd\.yaml") as caught:
            load(write_config(channels=channels))
        assert "pw@" not in str(caught.value)

    async def test_unknown_url_names_its_source_not_its_content(self, make_channel: MakeChannel) -> None:
        channel = make_channel("nosuchservice://token-1234567@host")
        with pytest.raises(PermanentError, match=f"URL in environment variable {ENV} \\(nosuchservice://…\\)") \
                as caught:
            await channel.open()
        assert "token-1234567" not in str(caught.value)

    async def test_apprise_never_logs_the_url(self, make_channel: MakeChannel) -> None:
        """Apprise logs "Unparseable URL <the URL>" through Python's logging; no handler of ours sees it."""
        seen = _Collect()
        logging.getLogger().addHandler(seen)  # as a daemon routing Python's logging to its own log would
        try:
            channel = make_channel("nosuchservice://token-1234567@host")
            with pytest.raises(PermanentError):
                await channel.send(message(), idempotency_key="k", reply_to=None)
        finally:
            logging.getLogger().removeHandler(seen)
        assert not [line for line in seen.lines if "token-1234567" in line]

    def test_limit_is_the_services(self, make_channel: MakeChannel) -> None:
        assert make_channel("json://127.0.0.1/x").max_chars == 32768


class TestJson:
    """Through json://, the receiver gets the text exactly, the first line as title, the URL's credentials."""

    async def test_arrives(self, make_channel: MakeChannel, receiver: JsonReceiver) -> None:
        channel = make_channel(receiver.url)
        assert await post(channel) == Sent(remote_id="delivery-0001")
        ((auth, body),) = receiver.received
        assert body["message"] == message().text and body["title"] == "Bibliothèque centrale : fermé. Dégât des eaux 💧"
        assert body["type"] == "info" and auth is not None and auth.startswith("Basic ")
        assert await channel.whoami() == f"Apprise JSON service (URL from environment variable {ENV})"

    async def test_a_thread_update_is_a_plain_message(self, make_channel: MakeChannel,
                                                      receiver: JsonReceiver) -> None:
        await post(make_channel(receiver.url), message("Toujours fermé."), Reply("delivery-0001", "delivery-0001"))
        assert receiver.received[0][1]["message"].startswith("Toujours fermé.")

    @settings(max_examples=15)
    @given(text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=300)
           .filter(str.strip))
    async def test_hostile_text_arrives_as_typed(self, text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
        fake = JsonReceiver()
        await fake.start()
        channel = AppriseChannel(_config(tmp_path_factory, fake.url), DeliveryConfig(timeout=2.0))
        try:
            await channel.send(Message(text, "fr", None, "e", "k", "main", "closed"), idempotency_key="k",
                               reply_to=None)
        finally:
            await channel.close()
            await fake.stop()
        # Apprise trims trailing white space (its NotifyBase does body.rstrip()); the rest is as typed.
        assert [body["message"] for _, body in fake.received] == [text.rstrip()]

    @pytest.mark.parametrize("status", [500, 401])
    async def test_refusal_is_transient_and_keeps_the_password_out(
        self, make_channel: MakeChannel, receiver: JsonReceiver, status: int
    ) -> None:
        """Apprise does not say whether a refusal lasts, so the outbox retries until its deadline."""
        receiver.status = status
        with pytest.raises(TransientError, match="the JSON service did not take the message") as caught:
            await post(make_channel(receiver.url))
        assert PASSWORD not in str(caught.value)

    async def test_silence_times_out(self, make_channel: MakeChannel, receiver: JsonReceiver) -> None:
        receiver.status = 0
        with pytest.raises(TransientError):
            await post(make_channel(receiver.url))

    async def test_nobody_listening(self, make_channel: MakeChannel) -> None:
        with pytest.raises(TransientError, match="Connection error"):
            await post(make_channel(f"json://127.0.0.1:{refusing_port()}/x"))
        with blackhole() as port, pytest.raises(TransientError):
            await post(make_channel(f"json://127.0.0.1:{port}/x"))


class TestMail:
    """Through mailto://, the SMTP server receives one mail: sender, recipient, subject and UTF-8 body."""

    async def test_mail_arrives(self, make_channel: MakeChannel, mailbox: tuple[Mailbox, int]) -> None:
        box, port = mailbox
        url = f"mailto://127.0.0.1:{port}?mode=insecure&from=statut@bib.test&to=abonnes@bib.test"
        await post(make_channel(url))
        ((envelope, mail),) = box.mails
        assert (envelope.mail_from, envelope.rcpt_tos) == ("statut@bib.test", ["abonnes@bib.test"])
        assert mail["Subject"] == "Bibliothèque centrale : fermé. Dégât des eaux 💧"
        body = mail.get_body(("plain",))
        # SMTP ends lines in CRLF.
        assert body is not None and body.get_content().replace("\r\n", "\n").strip() == message().text

    async def test_refused_mail_is_transient(self, make_channel: MakeChannel, mailbox: tuple[Mailbox, int]) -> None:
        box, port = mailbox
        box.refuse = True
        url = f"mailto://127.0.0.1:{port}?mode=insecure&from=statut@bib.test&to=abonnes@bib.test"
        with pytest.raises(TransientError, match="E-Mail service did not take the message"):
            await post(make_channel(url))
        assert box.mails == []


class TestHonesty:
    """No undo and no look-up: delete refuses with a reason, find answers None."""

    async def test_no_undo(self, make_channel: MakeChannel, receiver: JsonReceiver) -> None:
        channel = make_channel(receiver.url)
        with pytest.raises(PermanentError, match="cannot take a message back"):
            await channel.delete("delivery-0001")

    async def test_no_look_up(self, make_channel: MakeChannel, receiver: JsonReceiver) -> None:
        channel = make_channel(receiver.url)
        await post(channel)
        assert await channel.find(message(), idempotency_key="delivery-0001") is None


class _Collect(logging.Handler):
    """Every log line that reaches it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _config(factory: pytest.TempPathFactory, url: str) -> ChannelConfig:
    """A ChannelConfig without a statusd.yaml, the URL in a file (the property test makes many)."""
    path = factory.mktemp("apprise") / "url"
    path.write_text(url, encoding="utf-8")
    return ChannelConfig(name="long_tail", type="apprise", language="fr", sites=None, events=None,
                         options=AppriseChannel.Options(url=Secret("file", str(path))),
                         secrets={"url": Secret("file", str(path))})
