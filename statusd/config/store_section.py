"""The `store:` keys: where the outbox's state lives (absent: the SQLite file in the state directory).

    store: postgresql://statusd@db.example.org/statusd
    store_password: {env: STATUSD_STORE_PASSWORD}
    store_timeout: 5s      # connect and statement timeout (default 5 s)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from statusd.config.reader import Section, parse_secret
from statusd.config.types import Secret

KEYS = ("store", "store_password", "store_timeout")
DEFAULT_TIMEOUT = 5.0
# libpq settings that are secrets: the server's password, and the client key's passphrase.
SECRET_SETTINGS = frozenset({"password", "sslpassword"})
# A shorter store_timeout is none at all: PostgreSQL's statement_timeout=0 waits for ever.
SHORTEST_TIMEOUT = 1.0


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
    if timeout < SHORTEST_TIMEOUT:
        root.error("store_timeout", f"should be at least {SHORTEST_TIMEOUT:g}s: a stalled server must "
                                    "become an error, and 0 would let it hold the store for ever")
        timeout = DEFAULT_TIMEOUT
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
    settings = _settings(dsn)  # as libpq reads it: percent-escapes decoded (?pass%77ord= is a password)
    if settings is None:
        root.error("store", "is not an address that can be read; write it as postgresql://USER@HOST[:PORT]/DATABASE")
        return False
    if has_password or SECRET_SETTINGS & settings.keys():
        root.error("store", "holds a password; secrets are never written in statusd.yaml: "
                            "remove it from the address and give store_password: {env: VARIABLE}, "
                            "{credential: NAME} or {file: PATH}")
        return False
    ports = [port for port in str(settings.get("port") or "").split(",") if port]
    if any(not port.isdigit() or not 0 < int(port) < 65536 for port in ports):
        root.error("store", "has a port that is not a number from 1 to 65535; "
                            "write it as postgresql://USER@HOST[:PORT]/DATABASE")
        return False
    return True


def _settings(dsn: str) -> dict[str, str] | None:
    """The libpq settings the address holds; None when libpq cannot read it."""
    import psycopg  # only when a PostgreSQL store is configured: `statusd set` starts without it
    from psycopg import conninfo

    try:
        return {key: str(value) for key, value in conninfo.conninfo_to_dict(dsn).items()}
    except psycopg.Error:
        return None


def limits(timeout: float, holder: str | None = None) -> dict[str, Any]:
    """libpq settings that turn a stall or a cut into an error within about `timeout` seconds
    (and, on a cluster node, name the lease holder its writes are fenced by: cluster/schema.py)."""
    millis = int(timeout * 1000)
    fence = f" -c statusd.holder={holder}" if holder else ""
    return {
        "autocommit": True, "connect_timeout": max(2, round(timeout)),
        "options": f"-c statement_timeout={millis} -c lock_timeout={millis} "
                   f"-c idle_in_transaction_session_timeout={millis * 2}{fence}",
        "keepalives": 1, "keepalives_idle": max(1, round(timeout)), "keepalives_interval": 1,
        "keepalives_count": 3, "tcp_user_timeout": millis, "application_name": "statusd"}
