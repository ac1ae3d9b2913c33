"""The public pages' wording per language, and choosing a language for a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FALLBACK = "en"

WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "open": "Open", "limited": "Limited service", "closed": "Closed", "emergency": "Emergency",
        "title": "Library status", "skip": "Skip to the status", "services": "Services",
        "since": "Since", "until": "Until", "planned": "Planned", "from": "From",
        "seats": "Seats available", "queue": "Queue wait", "no_live_data": "No live data",
        "updates": "Recent updates", "no_updates": "No updates yet.", "languages": "Languages",
        "feeds": "Follow", "feed": "Atom feed", "calendar": "Closures calendar",
        "status_json": "Status data (JSON)", "cap": "Alerts (CAP)", "updated": "Updated",
        "until_further_notice": "until further notice", "site_page": "Site page",
        "author": "Library status service",
    },
    "fr": {
        "open": "Ouvert", "limited": "Service réduit", "closed": "Fermé", "emergency": "Urgence",
        "title": "État de la bibliothèque", "skip": "Aller à l'état des sites", "services": "Services",
        "since": "Depuis", "until": "Jusqu'à", "planned": "Prévu", "from": "À partir de",
        "seats": "Places disponibles", "queue": "Attente à l'entrée",
        "no_live_data": "Pas de données en direct", "updates": "Dernières mises à jour",
        "no_updates": "Aucune mise à jour pour l'instant.", "languages": "Langues",
        "feeds": "Suivre", "feed": "Flux Atom", "calendar": "Calendrier des fermetures",
        "status_json": "Données d'état (JSON)", "cap": "Alertes (CAP)", "updated": "Mis à jour",
        "until_further_notice": "jusqu'à nouvel ordre", "site_page": "Page du site",
        "author": "Service d'état de la bibliothèque",
    },
    "sv": {
        "open": "Öppet", "limited": "Begränsad service", "closed": "Stängt", "emergency": "Nödläge",
        "title": "Bibliotekets status", "skip": "Hoppa till status", "services": "Tjänster",
        "since": "Sedan", "until": "Till", "planned": "Planerat", "from": "Från",
        "seats": "Lediga platser", "queue": "Kötid", "no_live_data": "Inga direktdata",
        "updates": "Senaste uppdateringar", "no_updates": "Inga uppdateringar ännu.",
        "languages": "Språk", "feeds": "Följ", "feed": "Atom-flöde", "calendar": "Stängningskalender",
        "status_json": "Statusdata (JSON)", "cap": "Larm (CAP)", "updated": "Uppdaterad",
        "until_further_notice": "tills vidare", "site_page": "Webbplatsens sida",
        "author": "Bibliotekets statustjänst",
    },
}


def words(lang: str) -> Mapping[str, str]:
    """The wording for `lang`, English where a language has none."""
    return WORDS.get(lang.split("-")[0], WORDS[FALLBACK])


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
