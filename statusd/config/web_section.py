"""The `web` section of statusd.yaml: what the public projection is asked to do beyond serving."""

from __future__ import annotations

from pathlib import Path

from statusd.config.reader import Section, parse_url
from statusd.config.types import WebConfig

__all__ = ["parse_web"]


def parse_web(section: Section, base: Path) -> WebConfig:
    """The `web` section: the banner when open, the export directory, the SSE hub."""
    if section.node is None or not section.is_mapping():
        return WebConfig()
    section.allow("banner_when_open", "export_dir", "hub")
    when_open = section.get("banner_when_open", False)
    if not isinstance(when_open, bool):
        section.error("banner_when_open", f"should be true or false, got {when_open!r}")
        when_open = False
    export = section.string("export_dir")
    return WebConfig(banner_when_open=when_open, export_dir=base / export if export else None,
                     hub=_hub(section))


def _hub(section: Section) -> str | None:
    """web.hub: the nchan publisher's URL, `{channel}` standing for the stream's name."""
    url = parse_url(section, "hub")
    if url is None:
        return None
    rest = url.replace("{channel}", "", 1)
    if "{channel}" not in url or "{" in rest or "}" in rest:
        section.error("hub", f"should hold {{channel}} once, as in http://127.0.0.1:8081/pub/{{channel}}; got {url!r}")
        return None
    return url
