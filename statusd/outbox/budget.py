"""Posting budgets: how many posts a channel may still make, and who gets them when short.

Each channel has a budget per 24 hours and per window, defaulting to the
platform's published limits (configurable per account under `budget:`).
Usage is counted from the store (posts sent within the period), so a
restart forgets nothing. When the budget runs short, staff changes and
emergencies go first: automatic seat and queue posts may only use the part
above a reserve, and beyond it they are dropped and recorded as dropped,
never queued for hours. A staff post that finds the budget spent waits
until the oldest post counted leaves the period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from statusd import metrics
from statusd.config.types import BudgetConfig, ChannelConfig
from statusd.events import AUTOMATIC
from statusd.outbox.records import DROPPED as DROPPED
from statusd.outbox.store import Delivery, Store

log = structlog.get_logger()

DAY = 86400.0
# Published limits: X free tier 17 posts / 24 h; stock Mastodon 300 statuses / 3 h;
# Bluesky 5,000 write points / h and 35,000 / day, a create costing 3 points.
# Facebook publishes none per post: its usage headers tell how much of the allowance is used
# (the channel keeps the highest share as `usage_percent`); automatics stop at 80 %.
DEFAULTS: dict[str, BudgetConfig] = {
    "x": BudgetConfig(per_day=17),
    "mastodon": BudgetConfig(per_window=300, window=3 * 3600.0),
    "bluesky": BudgetConfig(per_day=35000, per_window=5000, window=3600.0, cost=3),
}
_AUTOMATIC = frozenset(kind.value for kind in AUTOMATIC)
USAGE_RESERVE = 20.0  # percent of a usage-measured allowance kept for staff posts


@dataclass(frozen=True)
class Remaining:
    """What is left of a channel's budget now: posts in each period (None: no limit)."""

    day: int | None
    window: int | None
    window_seconds: float
    frees_at: float | None  # when the next post leaves the tighter period, if it is spent
    reserve: int
    waiting_staff: int      # staff posts waiting to be sent
    usage: float | None = None  # percent of the platform's allowance used (Facebook's headers)

    @property
    def posts(self) -> int | None:
        """Posts that may still go out, the tighter period deciding."""
        left = [n for n in (self.day, self.window) if n is not None]
        return min(left) if left else None

    @property
    def short_by(self) -> int:
        """How many waiting staff posts (a crisis thread) will not fit in what is left."""
        posts = self.posts
        return 0 if posts is None else max(0, self.waiting_staff - posts)


class Budget:
    """One channel's budget, counted from the store."""

    def __init__(self, channel: str, limits: BudgetConfig, usage: Callable[[], float | None] | None = None) -> None:
        self.channel = channel
        self.limits = limits
        self.usage = usage
        self._warned_short = 0

    @property
    def limited(self) -> bool:
        counted = self.limits.per_day is not None or self.limits.per_window is not None
        return counted or self.usage is not None

    def remaining(self, store: Store, now: float | None = None) -> Remaining:
        now = time.time() if now is None else now
        lim = self.limits
        day = _left(store, self.channel, lim.per_day, DAY, lim.cost, now)
        window = _left(store, self.channel, lim.per_window, lim.window, lim.cost, now)
        frees_at = None
        for left, period in ((day, DAY), (window, lim.window)):
            if left is not None and left <= 0:
                oldest = _oldest_sent(store, self.channel, now - period)
                frees_at = max(frees_at or 0.0, (oldest or now) + period)
        return Remaining(day, window, lim.window, frees_at, _reserve(lim),
                         _waiting_staff(store, self.channel), self.usage() if self.usage else None)

    def admit(self, store: Store, delivery: Delivery, now: float | None = None) -> bool:
        """Whether `delivery` may be sent now; if not, it is recorded as dropped or postponed."""
        if not self.limited or delivery.message is None or delivery.attempts > 0:
            return True  # an earlier attempt may have posted it: never drop what may be said
        now = time.time() if now is None else now
        left = self.remaining(store, now)
        posts = left.posts
        automatic = delivery.message.kind in _AUTOMATIC
        if automatic and left.usage is not None and left.usage >= 100 - USAGE_RESERVE:
            return self._drop(store, delivery, f"dropped: {self.channel} has used {left.usage:g} % of "
                              "its allowance; the rest is kept for staff changes and emergencies")
        if posts is None:
            return True
        if automatic and posts <= left.reserve:
            return self._drop(store, delivery, f"dropped: {self.channel} has {max(posts, 0)} posts left "
                              "in its budget, kept for staff changes and emergencies")
        self._warn_if_short(left, now)
        if posts > 0:
            return True
        until = left.frees_at or now + 60.0
        store.postpone(delivery.id, until, f"posting budget spent; next post possible at {_clock(until)}")
        log.warning("budget_spent", channel=self.channel, delivery=delivery.id, until=round(until))
        return False

    def _drop(self, store: Store, delivery: Delivery, reason: str) -> bool:
        drop(store, delivery.id, reason)
        metrics.DELIVERIES.labels(self.channel, DROPPED).inc()
        log.warning("delivery_dropped", channel=self.channel, delivery=delivery.id, reason=reason)
        return False

    def _warn_if_short(self, left: Remaining, now: float) -> None:
        """Say so once per shortfall when a crisis thread will not fit in what is left."""
        if left.short_by > 0 and left.short_by != self._warned_short:
            log.warning("budget_short", channel=self.channel, waiting=left.waiting_staff,
                        remaining=left.posts, frees_at=round(left.frees_at) if left.frees_at else None)
        self._warned_short = left.short_by


def budget_for(config: ChannelConfig, channel: object = None) -> Budget:
    """The channel's budget: the platform's defaults, with what the account configures on top.

    A channel that measures its allowance (Facebook's usage headers, `usage_percent`)
    is budgeted by that share too.
    """
    limits = replace(DEFAULTS.get(config.type, BudgetConfig()), **dict(config.budget))
    usage = None
    if channel is not None and config.type == "facebook":
        def usage() -> float | None:
            share = getattr(channel, "usage_percent", None)
            return float(share) if isinstance(share, (int, float)) else None
    return Budget(config.name, limits, usage)


def drop(store: Store, delivery_id: int, reason: str) -> None:
    """Record a delivery as dropped: not sent, not failed, and never tried again."""
    store.drop(delivery_id, reason)


def _reserve(limits: BudgetConfig) -> int:
    """Posts kept for staff: as configured, else a fifth of the tighter period's posts."""
    if limits.reserve is not None:
        return limits.reserve
    cost = max(limits.cost, 1)
    sizes = [points // cost for points in (limits.per_day, limits.per_window) if points is not None]
    return max(1, -(-min(sizes) // 5)) if sizes else 0


def _left(store: Store, channel: str, points: int | None, period: float, cost: int,
          now: float) -> int | None:
    if points is None:
        return None
    return (points - store.sent_since(channel, now - period) * cost) // max(cost, 1)


def _oldest_sent(store: Store, channel: str, since: float) -> float | None:
    return store.oldest_sent(channel, since)


def _waiting_staff(store: Store, channel: str) -> int:
    return store.waiting_staff(channel, sorted(_AUTOMATIC))


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
