"""The `rules:` section: bands, hysteresis, smoothing and pace of automatic posts, per site.

Everything has a default, so a site with zones works with no section at all.
Settings cascade: `rules:` → `rules.sites.SITE` → `rules.sites.SITE.zones.ZONE`
(or `.queues.QUEUE`). See `SCHEMA` for the shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

from statusd.config.bands import QUEUE_BANDS, QUEUE_QUIET, SEAT_BANDS, SEAT_QUIET, Bands
from statusd.config.reader import Section, parse_duration
from statusd.config.types import Site

SCHEMA = """\
rules:
  seats:                                  # bands by lower bound in percent occupied
    bands: {free: 0, busy: 50, nearly_full: 80, full: 95}
    hysteresis: 5                         # percentage points below a bound before leaving it
    quiet: [free, busy]                   # changes among these are not posted
  queue:                                  # bands by lower bound in minutes of wait
    bands: {none: 0, under_15: 5, 15_30: 15, 30_60: 30, 60_90: 60, over_90: 90}
    hysteresis: 3                         # minutes (or a duration: 3m)
    quiet: [none, under_15]
    rate_window: 15m                      # admission rate averaged over this (Little's law)
  smoothing: {method: ewma, window: 5m}   # ewma | median | none
  min_interval: 30m                       # between automatic posts per site and kind
  stale_after: 5m                         # a sensor silent this long is "live data unavailable"
  aggregate: true                         # one post per site listing its zones
  sites:
    main:                                 # any of the keys above, for this site only
      zones: {floor3: {bands: {...}, hysteresis: 3, quiet: [], stale_after: 10m}}
      queues: {entrance: {bands: {...}, hysteresis: 5, stale_after: 2m, gate: door}}
"""
METHODS = ("ewma", "median", "none")
_GENERAL = ("seats", "queue", "smoothing", "min_interval", "stale_after", "aggregate")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class Smoothing:
    """How noisy readings are calmed: an exponential average or a moving median over `window` s."""

    method: str = "ewma"
    window: float = 300.0


@dataclass(frozen=True)
class Watch:
    """The rules for one zone or queue: its bands and when its sensor counts as silent.

    A change from one `quiet` band to another is not posted. `gate` (queues
    only) names the gate counter whose "in" total counts admissions.
    """

    bands: Bands
    stale_after: float = 300.0
    gate: str | None = None
    quiet: frozenset[str] = frozenset()

    def worth_saying(self, before: str, after: str) -> bool:
        return before != after and not (before in self.quiet and after in self.quiet)


@dataclass(frozen=True)
class SiteRules:
    """The rules of one site; zones and queues not listed use `seats` and `queue`."""

    seats: Watch
    queue: Watch
    zones: Mapping[str, Watch] = field(default_factory=dict)
    queues: Mapping[str, Watch] = field(default_factory=dict)
    smoothing: Smoothing = Smoothing()
    min_interval: float = 1800.0
    aggregate: bool = True
    rate_window: float = 900.0

    def zone(self, zone_id: str) -> Watch:
        return self.zones.get(zone_id, self.seats)

    def queue_watch(self, queue_id: str) -> Watch:
        return self.queues.get(queue_id, self.queue)


@dataclass(frozen=True)
class RulesConfig:
    """The rules of every configured site."""

    sites: Mapping[str, SiteRules]
    default: SiteRules

    def site(self, site_id: str) -> SiteRules:
        return self.sites.get(site_id, self.default)


DEFAULT_SITE = SiteRules(
    seats=Watch(Bands.of(SEAT_BANDS, 5.0), quiet=frozenset(SEAT_QUIET)),
    queue=Watch(Bands.of(QUEUE_BANDS, 3.0), quiet=frozenset(QUEUE_QUIET)),
)


def default_rules(sites: Mapping[str, Site]) -> RulesConfig:
    """The rules when statusd.yaml has no `rules:` section."""
    return RulesConfig({site_id: DEFAULT_SITE for site_id in sites}, DEFAULT_SITE)


def parse_rules(section: Section, sites: Mapping[str, Site]) -> RulesConfig:
    """The `rules:` section (its node may be None); problems go to `section.problems`."""
    if section.node is None or not section.is_mapping():
        return default_rules(sites)
    section.allow(*_GENERAL, "sites")
    general = _settings(section, DEFAULT_SITE)
    per_site = section.sub("sites")
    chosen: dict[str, SiteRules] = {site_id: general for site_id in sites}
    if per_site.node is not None and per_site.is_mapping():
        for site_id, sub in per_site.items():
            if site_id not in sites:
                per_site.error(site_id, f"unknown site; the sites are {', '.join(sites)}")
            elif sub.node is not None and sub.is_mapping():
                chosen[site_id] = _site(sub, general, sites[site_id])
    return RulesConfig(chosen, general)


def _site(section: Section, base: SiteRules, site: Site) -> SiteRules:
    section.allow(*_GENERAL, "zones", "queues")
    rules = _settings(section, base)
    zones = _items(section.sub("zones"), site.zones, rules.seats, "zone", _seat_bands)
    queues = _items(section.sub("queues"), site.queues, rules.queue, "queue", _queue_bands)
    return replace(rules, zones=zones, queues=queues)


def _settings(section: Section, base: SiteRules) -> SiteRules:
    stale = section.duration("stale_after", base.seats.stale_after)
    seats = _watch(section.sub("seats"), replace(base.seats, stale_after=stale), _seat_bands)
    queue_section = section.sub("queue")
    queue = _watch(
        queue_section, replace(base.queue, stale_after=stale), _queue_bands, "rate_window"
    )
    aggregate = section.get("aggregate", base.aggregate)
    if not isinstance(aggregate, bool):
        section.error("aggregate", f"should be true or false, got {aggregate!r}")
        aggregate = base.aggregate
    return replace(
        base,
        seats=seats,
        queue=queue,
        smoothing=_smoothing(section.sub("smoothing"), base.smoothing),
        min_interval=section.duration("min_interval", base.min_interval),
        aggregate=aggregate,
        rate_window=_rate_window(queue_section, base.rate_window),
    )


def _rate_window(section: Section, default: float) -> float:
    if not isinstance(section.node, Mapping):
        return default
    window = section.duration("rate_window", default)
    if window < 60:
        section.error(
            "rate_window", "should be at least 1m (10m to 15m smooths a gate counter well)"
        )
        return default
    return window


def _watch(section: Section, base: Watch, bands: Any, *more: str) -> Watch:
    if section.node is None or not section.is_mapping():
        return base
    section.allow("bands", "hysteresis", "quiet", *more)
    parsed: Bands = bands(section, base.bands)
    return replace(base, bands=parsed, quiet=_quiet(section, parsed, base.quiet))


def _items(
    section: Section, known: Mapping[str, Any], base: Watch, what: str, bands: Any
) -> dict[str, Watch]:
    """Per-zone or per-queue overrides; ids must be configured for the site."""
    found: dict[str, Watch] = {}
    if section.node is None or not section.is_mapping():
        return found
    for item_id, sub in section.items():
        if item_id not in known:
            section.error(
                item_id, f"unknown {what}; this site's {what}s are {', '.join(known) or 'none'}"
            )
            continue
        if sub.node is None or not sub.is_mapping():
            continue
        sub.allow(
            "bands", "hysteresis", "quiet", "stale_after", *(("gate",) if what == "queue" else ())
        )
        gate = sub.string("gate") if what == "queue" else None
        parsed: Bands = bands(sub, base.bands)
        found[item_id] = Watch(
            parsed,
            sub.duration("stale_after", base.stale_after),
            gate or base.gate,
            _quiet(sub, parsed, base.quiet),
        )
    return found


def _quiet(section: Section, bands: Bands, default: frozenset[str]) -> frozenset[str]:
    value = section.get("quiet")
    if value is None:
        return default & frozenset(bands.names)
    if not isinstance(value, list) or any(v not in bands.names for v in value):
        section.error("quiet", f"should be a list of band names from: {', '.join(bands.names)}")
        return default & frozenset(bands.names)
    return frozenset(value)


def _seat_bands(section: Section, base: Bands) -> Bands:
    hysteresis = _number(section, "hysteresis", base.hysteresis, 0.0, 25.0, "percentage points")
    pairs = _band_pairs(section, base, 100.0, "percent")
    return Bands.of(pairs, hysteresis)


def _queue_bands(section: Section, base: Bands) -> Bands:
    value = section.get("hysteresis")
    hysteresis = base.hysteresis
    if isinstance(value, str):  # a duration such as "3m"
        seconds = parse_duration(value)
        if seconds is None:
            section.error("hysteresis", f"should be minutes (3) or a duration (3m), got {value!r}")
        else:
            hysteresis = seconds / 60
    elif value is not None:
        hysteresis = _number(section, "hysteresis", base.hysteresis, 0.0, 60.0, "minutes")
    return Bands.of(_band_pairs(section, base, None, "minutes of wait"), hysteresis)


def _band_pairs(
    section: Section, base: Bands, top: float | None, unit: str
) -> tuple[tuple[str, float], ...]:
    default = tuple(zip(base.names, base.lowers))
    value = section.get("bands")
    if value is None:
        return default
    hint = f"should map each band name to its lower bound in {unit}, from 0 upwards"
    if not isinstance(value, Mapping) or len(value) < 2:
        section.error("bands", f"{hint}, with at least two bands")
        return default
    pairs = [(str(k), v) for k, v in value.items()]
    bad = [
        k
        for k, v in pairs
        if not _NAME.match(k)
        or isinstance(v, bool)
        or not isinstance(v, (int, float))
        or v < 0
        or (top is not None and v > top)
    ]
    lowers = [float(v) for _, v in pairs if not isinstance(v, bool) and isinstance(v, (int, float))]
    if bad:
        section.error("bands", f"{hint}; wrong: {', '.join(bad)}")
    elif lowers[0] != 0 or any(b <= a for a, b in pairwise(lowers)):
        section.error("bands", f"{hint}; the first must be 0 and each higher than the one before")
    else:
        return tuple((k, float(v)) for k, v in pairs)
    return default


def _number(
    section: Section, key: str, default: float, low: float, high: float, unit: str
) -> float:
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        section.error(key, f"should be a number of {unit} from {low:g} to {high:g}, got {value!r}")
        return default
    return float(value)


def _smoothing(section: Section, base: Smoothing) -> Smoothing:
    if section.node is None or not section.is_mapping():
        return base
    section.allow("method", "window")
    method = section.string("method", base.method) or base.method
    if method not in METHODS:
        section.error("method", f"should be one of {', '.join(METHODS)}, got {method!r}")
        method = base.method
    return Smoothing(method, section.duration("window", base.window))
