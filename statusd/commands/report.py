"""`statusd show` and `statusd history`: what is in force, and what was said.

Every time is printed in one zone, named in a heading and after each time:
the first site's zone unless --tz names another.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from statusd import paths
from statusd.commands.shared import common, load_config
from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.events import Event, EventKind
from statusd.model import Announced, Wanted
from statusd.sources.status import rows
from statusd.sources.status import wanted as wanted_status

# Every command's parser is built from this module: the store, the rules and the page's
# snapshot are imported where `show` and `history` use them, so `set` starts fast.
if TYPE_CHECKING:
    from statusd.outbox.store import Delivery, Store

NOT_YET = "not yet announced"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = sub.add_parser("show", help="the status in force and the last updates' deliveries")
    common(show)
    show.add_argument("-n", type=int, default=5, help="how many recent updates (default 5)")
    show.add_argument("--tz", help="print times in this zone (default: the first site's)")
    show.set_defaults(handler=show_status)
    history = sub.add_parser("history", help="the last updates, who made them, and their deliveries")
    common(history)
    history.add_argument("-n", type=int, default=20, help="how many updates (default 20)")
    history.add_argument("--tz", help="print times in this zone (default: the first site's)")
    history.add_argument("--site", action="append", dest="sites", metavar="SITE",
                         help="only the updates of this site (again for more)")
    history.set_defaults(handler=show_history)


def _open_store(args: argparse.Namespace, config: Config) -> Store | None:
    from statusd.outbox.opening import open_store

    state = paths.state_dir(args.state_dir, config)
    if not config.store.postgresql and not paths.store_path(state).exists():
        return None
    return open_store(config, state, readonly=True)


def _zone(args: argparse.Namespace, config: Config) -> tzinfo:
    """--tz, else the first site's zone (UTC without sites)."""
    name = getattr(args, "tz", None)
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise UserError(f"--tz {name!r} is not a time zone; use a name such as Europe/Paris or UTC") from err
    return next((site.tz for site in config.sites.values()), UTC)


def _zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz.tzname(None) or "UTC")


def show_status(args: argparse.Namespace) -> int:
    from statusd.web.snapshot import snapshot

    config = load_config(args)
    tz = _zone(args, config)
    store = _open_store(args, config)
    source = wanted_status.for_config(config)
    try:
        wanted = source.read()
    except ConfigError as err:
        print(f"{source.describe()} is broken; the daemon keeps the last good status:\n  {err.problems[0]}\n")
        wanted = {}
    if config.store.dsn is not None:
        from statusd.cluster.report import leadership_lines

        print("\n".join(leadership_lines(rows.address(config), config.cluster.node_name)) + "\n")
    print(f"Times in {_zone_name(tz)}\n")
    now = datetime.now(UTC)
    announced = store.announced() if store else {}
    view = snapshot(config, wanted, announced, now)
    unsaid = not_yet_announced(wanted, announced, config, now)
    for site_id, site in view["sites"].items():
        print(_status_line(site_id, site, tz, site_id in unsaid))
        for service_id, service in site["services"].items():
            key = f"{site_id}/{service_id}"
            if service["level"] != "open" or service["message"] or service["planned"] or key in unsaid:
                print(_status_line(f"  {service_id}", service, tz, key in unsaid))
    if unsaid:
        print(f"\n{NOT_YET}: the store has not recorded {', '.join(sorted(unsaid))} yet"
              " (is the daemon running? can it write its state directory?)")
    for name, reason in config.inactive.items():
        print(f"channel {name}: {reason}")
    for line in _sensor_lines(config):
        print(line)
    if store:
        for line in _channel_lines(args, config, store, tz):
            print(line)
        print("\nLast updates")
        _print_updates(store, args.n, tz)
        store.close()
    return 0


def _channel_lines(args: argparse.Namespace, config: Config, store: Store, tz: tzinfo) -> list[str]:
    """Each channel's health (pause, failure, credential warnings) and remaining budget."""
    from statusd.outbox import health
    from statusd.outbox.budget import budget_for

    checks = health.read_checks(paths.state_dir(args.state_dir, config))
    budgets = {name: budget_for(channel) for name, channel in config.channels.items()}
    lines = []
    pauses = store.pauses()
    for name, entry in health.report(store, list(config.channels), budgets, checks).items():
        if name in pauses:
            until, reason = pauses[name]
            lines.append(f"channel {name}: paused until {_when(until, tz)} ({reason})")
        elif entry["state"] == "failing":
            lines.append(f"channel {name}: failing: {entry.get('reason')}")
        lines.extend(f"channel {name}: warning: {text}" for text in entry.get("warnings", []))
        if budget := entry.get("budget"):
            lines.append(f"channel {name}: {_budget_text(budget, tz)}")
    return lines


def _budget_text(budget: dict[str, object], tz: tzinfo) -> str:
    parts = []
    if budget.get("24h") is not None:
        parts.append(f"{budget['24h']} posts left in 24 h")
    if budget.get("window") is not None:
        window = float(str(budget["window_seconds"])) / 3600
        parts.append(f"{budget['window']} in {window:g} h")
    text = "budget " + ", ".join(parts) + f" ({budget['reserved_for_staff']} kept for staff)"
    if budget.get("frees_at"):
        text += f"; spent until {_local(budget['frees_at'], tz)}"
    if budget.get("short"):
        text += f"; {budget['short']}"
    return text


def show_history(args: argparse.Namespace) -> int:
    config = load_config(args)
    tz = _zone(args, config)
    store = _open_store(args, config)
    if store is None:
        print("Nothing has been announced yet.")
        return 0
    print(f"Times in {_zone_name(tz)}")
    _print_updates(store, args.n, tz, getattr(args, "sites", None))
    store.close()
    return 0


def not_yet_announced(wanted: Wanted, announced: Mapping[str, Announced], config: Config,
                      now: datetime) -> set[str]:
    """Targets whose wanted status differs from what the store says was announced."""
    from statusd.rules import reconcile

    plan = reconcile(wanted, announced, config, now)
    return {str(e.target) for e in plan.events if e.kind is EventKind.STATUS_CHANGED}


def _status_line(name: str, data: dict[str, object], tz: tzinfo, unsaid: bool = False) -> str:
    """One target's level and times, in the zone chosen for the whole listing."""
    line = f"{name:<14} {data['level']:<10}" + (f" [{NOT_YET}]" if unsaid else "")
    if data.get("since"):
        line += f" since {_local(data['since'], tz)}"
    if data.get("until"):
        line += f" until {_local(data['until'], tz)}"
    messages = data.get("message") or {}
    assert isinstance(messages, dict)
    for lang, text in messages.items():
        line += f"\n{'':<15}{lang}: {text}"
    planned = data.get("planned")
    if isinstance(planned, dict):
        line += f"\n{'':<15}planned: {planned['level']} from {_local(planned['from'], tz)}"
        if planned.get("until"):
            line += f" until {_local(planned['until'], tz)}"
    return line


def _print_updates(store: Store, limit: int, tz: tzinfo, sites: Sequence[str] | None = None) -> None:
    updates = store.recent(limit) if sites is None else [
        update for update in store.recent(max(10 * limit, 200)) if update[0].target.site in sites][:limit]
    if not updates:
        print("  none yet")
    for event, created, deliveries in updates:
        stored = store.event(event.id)
        line = _update_line(event, created, tz)
        if stored and stored.retracted_at:
            line += f"  — taken back by {stored.retracted_by}"
        print(line)
        for delivery in deliveries:
            action = "" if delivery.action == "post" else f" ({delivery.action})"
            print(f"    {delivery.channel + action:<14} {_delivery_state(delivery, tz)}")


def _update_line(event: Event, created: float, tz: tzinfo) -> str:
    when = _when(created, tz, seconds=True)
    what = f"{event.target} → {event.level.value} ({event.kind.value}, {event.reason})"
    return f"{when}  {what}  by {event.author}  [{event.id}]"


def _delivery_state(d: Delivery, tz: tzinfo) -> str:
    from statusd.outbox.store import FAILED, PENDING, SENDING, SENT

    if d.state == SENT and d.action == "delete":
        # A deletion's remote_url says how the post was withdrawn when it could not be deleted.
        return f"{d.remote_url} id {d.remote_id}" if d.remote_url else f"deleted   id {d.remote_id}"
    if d.state == SENT:
        return f"sent      id {d.remote_id}" + (f" {d.remote_url}" if d.remote_url else "")
    if d.state in (PENDING, SENDING):
        wait = d.next_attempt - time.time()
        when = "now" if wait <= 0 else _when(d.next_attempt, tz, seconds=True)
        last = f" (last: {d.last_error})" if d.last_error else ""
        return f"{d.state:<9} attempt {d.attempts + 1} {when}{last}"
    if d.state == FAILED:
        return f"failed    {d.last_error}"
    return f"{d.state:<9} {d.last_error or ''}"


def _local(iso: object, tz: tzinfo) -> str:
    """An ISO time in the listing's zone, with the zone's abbreviation (CET, CEST, UTC)."""
    return datetime.fromisoformat(str(iso)).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _when(epoch: float, tz: tzinfo, seconds: bool = False) -> str:
    """Epoch seconds in the listing's zone, with the zone's abbreviation."""
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def _sensor_lines(config: Config) -> list[str]:
    """What the running daemon says of its sensors (the live view lives in the daemon)."""
    import json
    import urllib.request

    # A daemon listening on every address answers on loopback too.
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host  # noqa: S104
    url = f"http://{host}:{paths.port(None, config)}/status.json"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            sites = json.load(answer).get("sites", {})
    except (OSError, ValueError):
        return []
    lines = []
    for site_id, site in sites.items():
        for family in ("zones", "queues"):
            for item, data in (site.get(family) or {}).items():
                if data.get("stale"):
                    since = data.get("updated_at")
                    lines.append(f"sensor {site_id}/{item}: live data unavailable (stale since {since})")
    return lines
