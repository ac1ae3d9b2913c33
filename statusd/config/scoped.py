"""statusd.yaml read for one site: what `statusd set` uses, checked exactly as the whole load checks it.

`statusd set main closed` needs the languages, the status file's place and
limits, the store's, the site `main` (its time zone and services), and the
names of the other sites (status.yaml may name them, and a typo is answered
with the known ones). So on a file whose layout the lines tell (layout.py) it
parses the small top-level sections and that one site's block, and leaves the
channels, feeds and rules, and the other sites' blocks, unread: a site that
status.yaml gives a time or a service is read, checked, when the check of
status.yaml asks for it. What is read is checked as `statusd check` and the
daemon check it (same problems, same lines); what is not read is theirs to
refuse. Whatever the layout cannot vouch for, the whole file is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from statusd.config import fastyaml, layout, load, reader
from statusd.config.reader import Problems, Section
from statusd.config.sites import parse_site
from statusd.config.types import Site
from statusd.errors import ConfigError

__all__ = ["Sites", "load_for"]

# Read only by the daemon and `statusd check`: set neither posts, nor reads sensors, nor applies rules.
UNREAD = ("sites", "channels", "feeds", "rules")


def load_for(path: Path, site: str, whole: Callable[[Path], load.Config]) -> load.Config:
    """The config with `site` (and what every command needs) checked; ConfigError listing its problems.

    `whole` loads the whole file (statusd.loading.load: this stage knows no channel type).
    """
    text = reader.read_text(path)
    found = layout.find(text)
    root_node = _parse(layout.keep(text, [s for k, s in found.sections.items() if k not in UNREAD])) \
        if found is not None else None
    if found is None or root_node is None:
        return whole(path)
    root = load.top_level(root_node, path)
    basics = load.basics(root)
    sites = Sites(path, text, found, basics, whole)
    if site in found.sites:
        sites.read(site, root.problems)
    scope = load.Scope(site, found.channels)
    config = load.settings(root, path, basics, sites, channels={}, scope=scope)
    root.problems.check()
    if sites.whole is not None:
        return whole(path)  # the site's block holds what only the whole file reads right
    return load.trusted(config)


def _parse(text: str) -> Any | None:
    """The document, when libyaml's fast path reads it exactly; None if ruamel would have to (an alias…)."""
    try:
        done, node = fastyaml.loads(text)
    except RecursionError:
        return None
    return node if done and isinstance(node, Mapping) else None


class Sites(Mapping[str, Site]):
    """Every site of the file by name; a site's block is read and checked when it is first asked for."""

    def __init__(self, path: Path, text: str, found: layout.Layout, basics: tuple[tuple[str, ...], str],
                 whole: Callable[[Path], load.Config]) -> None:
        self.path, self.text, self.found, self.basics, self.load_whole = path, text, found, basics, whole
        self.done: dict[str, Site] = {}
        self.whole: Mapping[str, Site] | None = None  # every site, when a block had to be read with the file

    def __getitem__(self, site_id: str) -> Site:
        if site_id not in self.found.sites:
            raise KeyError(site_id)
        if site_id not in self.done:
            problems = Problems(str(self.path))
            self.read(site_id, problems)
            problems.check()
        return self.done[site_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.found.sites)

    def __len__(self) -> int:
        return len(self.found.sites)

    def __contains__(self, site_id: object) -> bool:
        return site_id in self.found.sites

    def read(self, site_id: str, problems: Problems) -> None:
        """Parse and check `site_id`'s block alone, on its own lines; problems go to `problems`."""
        if self.whole is not None:
            self.done[site_id] = self.whole[site_id]
            return
        span = self.found.sites[site_id]
        # The block under a `sites:` line of its own, as many lines down as in the file.
        node = _parse("\n" * (span.line - 1) + "sites:\n" + self.text[span.begin:span.end])
        if node is None or list(node) != ["sites"] or list(node["sites"] or ()) != [site_id]:
            self.whole = self.load_whole(self.path).sites  # an alias, a tag…: the whole file, checked whole
            self.done[site_id] = self.whole[site_id]
            return
        sites = Section(node["sites"], "sites", problems)
        load.check_text(sites.node, "sites", reader.node_line(sites.node), problems)
        languages, public_url = self.basics
        site = parse_site(site_id, sites.sub(site_id), languages, public_url)
        if site is None:
            raise ConfigError(problems.found or [])  # pragma: no cover - the layout holds block mappings only
        self.done[site_id] = site
