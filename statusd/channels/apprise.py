"""Apprise channel: the long tail (e-mail, SMS gateways, Discord, Slack, Teams, ntfy, Gotify…) through one URL.

The Apprise URL names the service and holds its credentials, so it is a secret, read by
reference like every other. Apprise only says whether a service accepted a message: there is
no id to take it back by, no thread to answer in, and nothing to look up after a crash. The
channel says so instead of pretending: `delete` refuses, replies go out as plain messages,
`find` answers None.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from apprise import AppriseResultStatus

from statusd.channels.base import PermanentError, Reply, Sent, TransientError
from statusd.channels.options import AppriseOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig

# A subject for services that show one (e-mail, Teams): the message's first line, this long at most.
TITLE_CHARS = 120
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}")


def _silence_apprise_logger() -> None:
    """Keep Apprise's own log lines off stderr: some quote the URL ("Unparseable URL …"), secrets and all.

    What went wrong still reaches statusd, through each call's captured logs, scrubbed.
    """
    logger = logging.getLogger("apprise")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


_silence_apprise_logger()


class AppriseChannel:
    """Sends each message through Apprise to the one service its URL names."""

    kind: ClassVar[str] = "apprise"
    # Apprise has no idempotency key and no look-up: after a crash a message may go out twice.
    honours_idempotency: ClassVar[bool] = False
    Options = AppriseOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig) -> None:
        # Every option is read here, in one place.
        self.name = config.name
        self.language = config.language
        url = config.secrets["url"].read() or ""
        self._source = config.secrets["url"].describe()
        options: AppriseOptions = config.options
        self._title = options.title
        self._timeout = float(options.timeout or delivery.timeout)
        self._secrets = _secret_parts(url)
        self._scheme = url.partition("://")[0] if _SCHEME.fullmatch(url.partition("://")[0]) else "?"
        self._apprise = apprise.Apprise()
        self._service: Any = self._apprise[0] if self._apprise.add(url) else None
        # The service's own limit (Apprise would otherwise cut or split the message itself).
        self.max_chars: int | None = (self._service.body_maxlen or None) if self._service else None

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        self._checked_service()

    async def whoami(self) -> str:
        service = self._checked_service()
        return f"Apprise {service.service_name} service (URL from {self._source})"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        # reply_to is not used: Apprise services have no threads, so an update is a message of its own.
        service = self._checked_service()
        result = await self._apprise.async_notify(
            body=message.text, title=self._subject(message, service), body_format="text", timeout=self._timeout)
        if result.status == AppriseResultStatus.SUCCESS:
            return Sent(remote_id=idempotency_key)
        said = self._scrub(_last_problem(result.logs()))
        if result.status == AppriseResultStatus.TIMEOUT:
            raise TransientError(f"the {service.service_name} service did not answer within {self._timeout:g} s")
        # Apprise reports failure without saying whether it lasts: try again until the deadline.
        raise TransientError(f"the {service.service_name} service did not take the message: {said}")

    async def delete(self, remote_id: str) -> None:
        service = self._checked_service()
        raise PermanentError(f"the {service.service_name} service cannot take a message back (Apprise has no "
                             "undo); post a correction instead")

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        # Apprise cannot read anything back: sending again is the only way not to lose the message.
        return None

    async def close(self) -> None:
        self._apprise.clear()

    def _checked_service(self) -> Any:
        if self._service is None:
            raise PermanentError(f"the Apprise URL in {self._source} ({self._scheme}://…) is not one Apprise "
                                 "understands; check its form with `apprise --details`")
        return self._service

    def _subject(self, message: Message, service: Any) -> str:
        if not service.title_maxlen:
            return ""
        first = message.text.strip().splitlines()[0] if message.text.strip() else ""
        return str(self._title or first)[:min(TITLE_CHARS, service.title_maxlen)]

    def _scrub(self, text: str) -> str:
        """Apprise's own words, with every part of the URL that may be a credential taken out."""
        for secret in self._secrets:
            text = text.replace(secret, "…")
        return " ".join(text.split())[:200] or "no reason given"


def _secret_parts(url: str) -> list[str]:
    """The URL and each piece of it that may hold a credential, longest first."""
    parts = urlsplit(url) if "://" in url else None
    pieces = [url]
    if parts is not None:
        pieces += [parts.netloc, parts.username or "", parts.password or "", parts.path, parts.query]
        pieces += [unquote(p) for p in parts.path.split("/")]
        pieces += [v for _, v in parse_qsl(parts.query)]
    return sorted({p for p in pieces if len(p) >= 4}, key=len, reverse=True)


def _last_problem(logs: Iterable[Any]) -> str:
    problems = [entry.message for entry in logs if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    return str(problems[-1]) if problems else ""
