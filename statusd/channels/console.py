"""The console channel: prints each message, for trying statusd out and for tests."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import ClassVar, TextIO

from statusd.channels.base import Reply, Sent
from statusd.channels.options import ConsoleOptions
from statusd.compose.message import Message
from statusd.config.types import ChannelConfig, DeliveryConfig
from statusd.safetext import terminal


class Console:
    """Writes every message to standard output, one block per message."""

    kind: ClassVar[str] = "console"
    honours_idempotency: ClassVar[bool] = False

    Options = ConsoleOptions  # what its section in statusd.yaml holds (statusd.channels.options)

    def __init__(self, config: ChannelConfig, delivery: DeliveryConfig, out: TextIO | None = None) -> None:
        self.name = config.name
        self.language = config.language
        options: ConsoleOptions = config.options
        self.max_chars: int | None = options.max_chars
        self._out = out or sys.stdout
        self._count = 0

    def measure(self, text: str) -> int:
        return len(text)

    async def open(self) -> None:
        return None

    async def whoami(self) -> str:
        return "the terminal (standard output)"

    async def send(
        self, message: Message, *, idempotency_key: str, reply_to: Reply | None, created: datetime | None = None
    ) -> Sent:
        self._count += 1
        header = f"── {self.name} [{message.language}] {message.kind} {message.target}"
        if reply_to:
            header += f" (reply to {reply_to.parent})"
        # A message may hold what a terminal takes as a command (ESC sequences): shown, not obeyed.
        self._out.write(terminal(f"{header}\n{message.text}") + "\n\n")
        self._out.flush()
        return Sent(remote_id=f"{self.name}-{idempotency_key[:12]}")

    async def delete(self, remote_id: str) -> None:
        self._out.write(terminal(f"── {self.name}: retracted {remote_id}") + "\n\n")
        self._out.flush()

    async def find(self, message: Message, *, idempotency_key: str, since: datetime | None = None,
                   reply_to: Reply | None = None, exclude: frozenset[str] = frozenset()) -> Sent | None:
        # Nothing to look up on a terminal; print again rather than lose it.
        return None

    async def close(self) -> None:
        return None
