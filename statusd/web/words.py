"""The public pages' wording (from alerts/labels.yaml), and choosing a language for a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from statusd.config import wording
from statusd.config.load import Config


def words(config: Config, lang: str) -> Mapping[str, str]:
    """The page's wording for `lang`, from alerts/labels.yaml (`page:`), the one wording component.

    A language without it is a `statusd check` problem; until it is fixed the
    first configured language's words are shown and the gap is logged.
    """
    return wording.load(config.alerts_dir).group("page", lang, config.default_language)


def negotiate(accept: str | None, languages: Sequence[str]) -> str:
    """The configured language the Accept-Language header prefers; the first one otherwise."""
    best, best_q = languages[0], 0.0
    for part in (accept or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = _quality(params)
        tag = tag.strip().lower()
        for lang in languages:
            if q > best_q and (tag == lang.lower() or tag.split("-")[0] == lang.lower()):
                best, best_q = lang, q
    return best


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def pick(requested: str | None, accept: str | None, languages: Sequence[str]) -> str:
    """`?lang=` when it names a configured language, else negotiated from Accept-Language."""
    if requested in languages:
        return requested  # type: ignore[return-value]
    return negotiate(accept, languages)


def text(texts: Mapping[str, str], lang: str, languages: Sequence[str]) -> str:
    """A message in `lang`, else in the first configured language that has one."""
    for candidate in (lang, *languages, *texts):
        if texts.get(candidate):
            return texts[candidate]
    return ""


def target_name(sites: Mapping[str, Mapping[str, object]], target: str, lang: str) -> str:
    """"Central Library" or "Central Library — Printing", from the snapshot's names."""
    site_id, _, service = target.partition("/")
    site = sites.get(site_id)
    if site is None:
        return target
    name = _name(site, lang) or site_id
    services = site.get("services")
    if service and isinstance(services, Mapping) and service in services:
        return f"{name} — {_name(services[service], lang) or service}"
    return f"{name} — {service}" if service else name


def _name(entry: object, lang: str) -> str:
    names = entry.get("name") if isinstance(entry, Mapping) else None
    if not isinstance(names, Mapping):
        return ""
    return str(names.get(lang) or next(iter(names.values()), ""))
