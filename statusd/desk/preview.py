"""What each channel would post for a desk change: its text, its length and its limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from statusd.config.load import Config
from statusd.model import Announced, Target


@dataclass(frozen=True)
class ChannelText:
    """One channel's post for the change, or why it would not be sent."""

    channel: str
    kind: str
    language: str
    text: str | None
    length: int
    limit: int | None
    error: str | None = None
    own_language: str | None = None  # set when the channel falls back from its own language


def preview(config: Config, target: Target, entry: object, wanted: dict[Target, object],
            announced: dict[str, Announced]) -> list[ChannelText]:
    """Render the change for every channel exactly as the announcer would."""
    from statusd.announcer import render
    from statusd.compose.composer import Composer
    from statusd.outbox.senders import build_channels
    from statusd.rules import reconcile

    plan = reconcile({**wanted, target: entry}, announced, config, datetime.now(UTC))  # type: ignore[dict-item]
    channels = build_channels(config)
    composer = Composer(config)
    texts = []
    for event in (e for e in plan.events if e.target == target):
        for planned in render(config, composer, channels, event):
            channel = channels[planned.channel]
            text = planned.message.text if planned.message else None
            settings = config.channels[planned.channel]
            posted = planned.message.language if planned.message else settings.language
            texts.append(ChannelText(planned.channel, settings.type, posted, text,
                                     channel.measure(text) if text else 0, channel.max_chars, planned.error,
                                     settings.language if posted != settings.language else None))
    return texts
