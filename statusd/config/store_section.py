"""The `store:` keys: where the outbox's state lives (absent: the SQLite file in the state directory).

    store: postgresql://statusd@db.example.org/statusd
    store_password: {env: STATUSD_STORE_PASSWORD}
    store_timeout: 5s      # connect and statement timeout (default 5 s)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from statusd.config.reader import Section, parse_secret
from statusd.config.types import Secret

KEYS = ("store", "store_password", "store_timeout")
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class StoreConfig:
    """The PostgreSQL address (no password in it) and where its password is read from; None: SQLite."""

    dsn: str | None = None
    password: Secret | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def postgresql(self) -> bool:
        return self.dsn is not None


def parse_store(root: Section) -> StoreConfig:
    timeout = root.duration("store_timeout", DEFAULT_TIMEOUT)
    if root.get("store") is None:
        if root.get("store_password") is not None:
            root.error("store_password", "is only used with store: postgresql://…; remove it or set store")
        return StoreConfig(timeout=timeout)
    dsn = root.string("store")
    if dsn is None or not _address_ok(root, dsn):
        return StoreConfig(timeout=timeout)
    password = parse_secret(root, "store_password") if root.get("store_password") is not None else None
    return StoreConfig(dsn, password, timeout)


def _address_ok(root: Section, dsn: str) -> bool:
    try:
        parts = urlsplit(dsn)
        has_password = parts.password is not None
    except ValueError:
        root.error("store", "is not an address that can be read; write it as postgresql://USER@HOST[:PORT]/DATABASE")
        return False
    if parts.scheme not in ("postgresql", "postgres"):
        root.error("store", "should be a postgresql://USER@HOST[:PORT]/DATABASE address, "
                            "or absent for the SQLite file in the state directory")
        return False
    if has_password or "password=" in parts.query:
        root.error("store", "holds a password; secrets are never written in statusd.yaml: "
                            "remove it from the address and give store_password: {env: VARIABLE}, "
                            "{credential: NAME} or {file: PATH}")
        return False
    return True
