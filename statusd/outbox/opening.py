"""Opening the configured store: the SQLite file in the state directory, or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from statusd.config.load import Config
from statusd.errors import StoreError, UserError
from statusd.outbox.contract import Store
from statusd.outbox.schema import SchemaBehind
from statusd.paths import store_path


def store_password(config: Config) -> str | None:
    """The PostgreSQL password `store_password` refers to (None when there is none); UserError, naming
    the reference and never a value, when it refers to nothing."""
    reference = config.store.password
    if reference is None:
        return None
    password = reference.read()
    if password is None:
        raise UserError(f"{config.path}: store_password: {reference.describe()} is not set; "
                        "set it, or remove store_password if the server needs none")
    return password


def open_store(config: Config, state_dir: Path, *, readonly: bool = False, current: bool = True,
               patient: bool = False, holder: str | None = None, autocheckpoint: int | None = None) -> Store:
    """The store `config` names. A PostgreSQL one must hold this code's schema (unless not `current`:
    `statusd migrate` opens it to make it so); its password is read now, and never shown.

    `patient` (the daemon): a server that cannot be reached yet is store trouble, not a
    refusal to start; the pool keeps trying, and the banner is served meanwhile.
    `holder`: a cluster node's lease holder id, set on its connections for the fence.
    `autocheckpoint`: a SQLite store's commits checkpoint past this many pages (see SqliteStore).
    """
    settings = config.store
    if settings.dsn is None:
        return open_sqlite(store_path(state_dir), readonly, autocheckpoint)
    from statusd.outbox.postgres import PostgresStore

    store = PostgresStore(settings.dsn, store_password(config), settings.timeout, holder=holder)
    if current:
        try:
            store.require_current()
        except SchemaBehind as err:
            store.close()
            raise UserError(str(err)) from err
        except StoreError as err:
            if not patient:
                store.close()
                raise
            store.troubles["record"] = f"the store {store.label} cannot record: {err}"
    return store


def open_reader(config: Config, path: Path) -> Store | None:
    """The store to read from, for the desk: the SQLite file at `path` (None while it does not
    exist), or the configured PostgreSQL database."""
    if config.store.postgresql:
        return open_store(config, path.parent, readonly=True)
    return open_sqlite(path, readonly=True) if path.exists() else None


def open_sqlite(path: Path, readonly: bool = False, autocheckpoint: int | None = None) -> Store:
    from statusd.outbox.sqlite import SqliteStore

    return SqliteStore(path, readonly=readonly, autocheckpoint=autocheckpoint)



def postgres_trouble(config: Config) -> str | None:
    """Why the PostgreSQL store cannot record now (as `statusd set` asks after writing), or None."""
    try:
        store = open_store(config, Path("."))
    except StoreError as err:
        return f"the store cannot record: {err}"
    try:
        store.probe()
    except StoreError:
        return store.trouble
    finally:
        store.close()
    return None
