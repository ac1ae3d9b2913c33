"""Who may do what: each desk request checked against the person's role and sites.

Every refusal is one sentence; the API answers it with 403.
"""

from __future__ import annotations

from statusd.desk.accounts import Person
from statusd.events import Event


class Forbidden(Exception):
    """A request the person may not make, with the sentence that says why."""


def may_change(person: Person, site: str) -> None:
    """Refuse a change of `site` that the person's sites do not include."""
    if not person.may_change(site):
        raise Forbidden(f"{person.name} may change {_sites(person)} only, not {site}; "
                        "ask a lead or the person who runs statusd")


def may_take_back(person: Person, event: Event) -> None:
    """desk: its own updates of its sites; lead: any update of its sites; admin: any update."""
    may_change(person, event.target.site)
    if person.role == "desk" and event.author != person.by:
        raise Forbidden(f"update {event.id} was made by {event.author}; a desk account takes back "
                        "only its own updates (a lead of the site may take back any)")


def _sites(person: Person) -> str:
    return ", ".join(person.sites) or "no site"
