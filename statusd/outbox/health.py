"""Channel health as data: what /readyz, /metrics and `statusd show` say of each channel.

A channel is "failing" when its last finished delivery failed (with that
delivery's reason), or when the periodic credential check was refused; it
is "ok" again after a post goes through. The credential check runs every
`delivery.recheck` (default 6 h): whoami for every channel, and for a channel
that can tell when its token expires (`token_expiry()`, Facebook's
debug_token), a warning ahead of time. The last check is kept in the state
directory (health.json) so that `statusd show`, another process, can tell it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Gauge

from statusd.channels.base import Channel, PermanentError, TransientError
from statusd.metrics import REGISTRY
from statusd.outbox.budget import Budget
from statusd.outbox.store import FAILED, SENT, Store

log = structlog.get_logger()

CHECK_FILE = "health.json"
WARN_AHEAD = 7 * 86400.0  # warn a week before a token expires
RECHECK_FAILED = 900.0    # a refused or unanswered check is repeated after 15 minutes
RECHECK_POLL = 60.0

HEALTH = Gauge("statusd_channel_health", "1 for each channel's current state and reason.",
               ["channel", "state", "reason"], registry=REGISTRY)
BUDGET = Gauge("statusd_budget_remaining", "Posts a channel may still make, by period.",
               ["channel", "period"], registry=REGISTRY)
EXPIRY = Gauge("statusd_token_expires_seconds", "Seconds until a channel's token expires.",
               ["channel", "token"], registry=REGISTRY)


@dataclass(frozen=True)
class Check:
    """One credential check: when, whether the platform accepted the credentials, and warnings."""

    at: float
    ok: bool | None  # None: the platform could not be asked
    reason: str = ""
    expires: dict[str, float] = field(default_factory=dict)  # token name → epoch seconds
    warnings: list[str] = field(default_factory=list)


class Health:
    """The daemon's credential checks, kept in memory and in the state directory."""

    def __init__(self, state_dir: Path | None, every: float, timeout: float) -> None:
        self.path = state_dir / CHECK_FILE if state_dir else None
        self.every = every
        self.timeout = timeout
        self.checks: dict[str, Check] = {}

    async def watch(self, channels: Callable[[], Mapping[str, Channel]]) -> None:
        """Check each channel when its last check is `every` seconds old, for the daemon's life.

        Checks kept from the last run count: a restart loop must not ask the platforms
        at every start (X allows 25 look-ups of the account a day). A refused or
        unanswered check is repeated sooner, and once at every start.
        """
        if self.path is not None:
            kept = await asyncio.to_thread(read_checks, self.path.parent)
            self.checks = {name: check for name, check in kept.items() if check.ok is True}
        while True:
            current = dict(channels())
            due = {name: ch for name, ch in current.items() if self._due(name) <= time.time()}
            if due:
                results = await asyncio.gather(*(self.check(ch) for ch in due.values()))
                merged = {**self.checks, **dict(zip(due, results, strict=True))}
                self.checks = {name: check for name, check in merged.items() if name in current}
                if self.path is not None:
                    await asyncio.to_thread(_write, self.path, self.checks)
            # Wake at least every minute: channels added by a reload are checked soon.
            soonest = min((self._due(name) for name in current), default=time.time() + RECHECK_POLL)
            await asyncio.sleep(min(RECHECK_POLL, max(1.0, soonest - time.time())))

    def _due(self, name: str) -> float:
        check = self.checks.get(name)
        if check is None:
            return 0.0
        return check.at + (self.every if check.ok else min(self.every, RECHECK_FAILED))

    async def check(self, channel: Channel, now: float | None = None) -> Check:
        """Ask the platform whether the credentials still work, and when they expire."""
        now = time.time() if now is None else now
        try:
            await asyncio.wait_for(channel.whoami(), self.timeout)
            expiry = getattr(channel, "token_expiry", None)
            expires = await asyncio.wait_for(expiry(), self.timeout) if expiry else {}
        except PermanentError as err:
            log.error("credentials_refused", channel=channel.name, reason=str(err))
            return Check(now, False, str(err))
        except (TransientError, TimeoutError) as err:
            log.warning("credentials_unchecked", channel=channel.name, reason=str(err) or "timed out")
            return Check(now, None, f"could not check: {err or 'timed out'}")
        found = {name: float(at) for name, at in expires.items() if at is not None}
        warnings = _warnings(channel.name, found, now)
        return Check(now, not any(at <= now for at in found.values()), "; ".join(warnings), found, warnings)


def report(store: Store, names: list[str], budgets: Mapping[str, Budget],
           checks: Mapping[str, Check], now: float | None = None) -> dict[str, dict[str, Any]]:
    """Each channel's state and reason, pending work, budget and last credential check."""
    now = time.time() if now is None else now
    pending, retrying, pauses = store.waiting(), store.retry_depth(), store.pauses(now)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        entry: dict[str, Any] = {"state": "ok", "pending": pending.get(name, 0)}
        if retrying.get(name):
            entry["state"] = "retrying"
        if name in pauses:
            until, reason = pauses[name]
            entry.update(state="paused", until=_iso(until), reason=reason)
        last = _last_outcome(store, name)
        if last is not None and last[0] == FAILED:
            entry.update(state="failing", reason=last[1])
        check = checks.get(name)
        if check is not None and last is not None and last[0] == SENT and last[2] > check.at:
            check = None  # a post went through since: the credentials work again
        if check is not None and check.ok is not True:
            entry["checked_at"] = _iso(check.at)  # when the credentials were refused, or unanswered
            if check.ok is False:
                entry.update(state="failing", reason=check.reason)
            else:
                entry["credentials"] = check.reason
        if check is not None and check.warnings:
            entry["warnings"] = check.warnings
        if name in budgets and budgets[name].limited:
            entry["budget"] = _budget(budgets[name], store, now)
        out[name] = entry
    return out


def update_metrics(health: Mapping[str, Mapping[str, Any]], checks: Mapping[str, Check],
                   now: float | None = None) -> None:
    """Set the health, budget and expiry gauges from a `report`."""
    now = time.time() if now is None else now
    HEALTH.clear()
    for name, entry in health.items():
        HEALTH.labels(name, entry["state"], str(entry.get("reason", ""))[:200]).set(1)
        for period, left in (entry.get("budget") or {}).items():
            if period in ("24h", "window") and left is not None:
                BUDGET.labels(name, period).set(left)
            if period == "usage_percent" and left is not None:
                BUDGET.labels(name, "allowance_percent").set(100 - left)
    for name, check in checks.items():
        for token, at in check.expires.items():
            EXPIRY.labels(name, token).set(at - now)


def read_checks(state_dir: Path) -> dict[str, Check]:
    """The daemon's last credential checks, for `statusd show`; empty if there are none."""
    try:
        data = json.loads((state_dir / CHECK_FILE).read_text(encoding="utf-8"))
        return {name: Check(**fields) for name, fields in data.items()}
    except (OSError, ValueError, TypeError):
        return {}


def _last_outcome(store: Store, channel: str) -> tuple[str, str, float] | None:
    """The state, reason and time of the channel's last finished post (sent or failed)."""
    return store.last_outcome(channel)


def _budget(budget: Budget, store: Store, now: float) -> dict[str, Any]:
    left = budget.remaining(store, now)
    entry: dict[str, Any] = {"24h": left.day, "window": left.window,
                             "window_seconds": left.window_seconds, "reserved_for_staff": left.reserve}
    if left.usage is not None:
        entry["usage_percent"] = left.usage
    if left.frees_at:
        entry["frees_at"] = _iso(left.frees_at)
    if left.short_by:
        entry["short"] = (f"{left.waiting_staff} staff posts wait, {left.posts} fit: "
                          f"{left.short_by} will wait for the budget")
    return entry


def _warnings(channel: str, expires: Mapping[str, float], now: float) -> list[str]:
    warnings = []
    for token, at in sorted(expires.items()):
        if at - now < WARN_AHEAD:
            verb = "expired" if at <= now else "expires"
            warnings.append(f"{token} {verb} {_iso(at)}; renew the token before then")
            log.warning("token_expiring", channel=channel, token=token, at=_iso(at))
    return warnings


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _write(path: Path, checks: Mapping[str, Check]) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(json.dumps({n: asdict(c) for n, c in checks.items()}), encoding="utf-8")
    os.replace(temporary, path)
