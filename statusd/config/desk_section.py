"""The desk section of statusd.yaml: how long accounts' tokens and sessions last, and single sign-on."""

from __future__ import annotations

from dataclasses import dataclass

from statusd.config.reader import Section, parse_secret, parse_url
from statusd.config.types import Secret

__all__ = ["DeskConfig", "SsoConfig", "parse_desk"]


@dataclass(frozen=True)
class SsoConfig:
    """Single sign-on with the library's OpenID Connect provider (the role and sites stay statusd's)."""

    issuer: str
    client_id: str
    client_secret: Secret


@dataclass(frozen=True)
class DeskConfig:
    """Desk accounts: how long a token, a page session and an enrolment link last unused."""

    token_idle: float = 30 * 86400.0
    session_idle: float = 12 * 3600.0
    enrol_valid: float = 86400.0
    sso: SsoConfig | None = None



def parse_desk(section: Section) -> DeskConfig:
    """desk: {token_idle, session_idle, enrol_valid: durations, sso: {...}}, each optional."""
    if section.node is None or not section.is_mapping():
        return DeskConfig()
    section.allow("token_idle", "session_idle", "enrol_valid", "sso")
    default = DeskConfig()
    idle = {key: section.duration(key, getattr(default, key)) for key in ("token_idle", "session_idle", "enrol_valid")}
    return DeskConfig(**idle, sso=_sso(section.sub("sso")))


def _sso(section: Section) -> SsoConfig | None:
    """desk.sso: {issuer: URL, client_id: TEXT, client_secret: {env|credential|file: …}}, or absent."""
    if section.node is None or not section.is_mapping():
        return None
    section.allow("issuer", "client_id", "client_secret")
    issuer = parse_url(section, "issuer", required=True)
    client_id = section.string("client_id", required=True)
    if section.get("client_secret") is None:
        section.error("client_secret", "is needed: {env: VARIABLE}, {credential: NAME} or {file: PATH}")
        return None
    secret = parse_secret(section, "client_secret")
    if issuer is None or client_id is None or secret is None:
        return None
    return SsoConfig(issuer.rstrip("/"), client_id, secret)
