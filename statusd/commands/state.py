"""`statusd migrate`, `export-state FILE` and `import-state FILE`: the store's schema, and moving a
library's state (store and status.yaml) between SQLite and PostgreSQL, losing nothing.

The export is JSON lines: a header, one line per row ({"table": …, "row": {…}}), and
status.yaml's text last. It holds the desk's password and token hashes: it is written 0600.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statusd import paths
from statusd.commands.shared import common, load_config
from statusd.errors import UserError

if TYPE_CHECKING:
    from statusd.config.load import Config
    from statusd.outbox.store import SqlStore
    from statusd.sources.status.rows import WantedRows

FORMAT, FORMAT_VERSION = "statusd-state", 1


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = sub.add_parser("migrate", help="create or upgrade the store's tables (SQLite or PostgreSQL)")
    common(migrate)
    migrate.set_defaults(handler=run_migrate)
    export = sub.add_parser("export-state", help="write the store and status.yaml to FILE (JSON lines)")
    common(export)
    export.add_argument("file", help="where to write the export (created 0600)")
    export.set_defaults(handler=run_export)
    load = sub.add_parser("import-state", help="load an export-state FILE into the configured store")
    common(load)
    load.add_argument("file", help="a file written by `statusd export-state`")
    load.add_argument("--replace", action="store_true",
                      help="delete what the store and status.yaml hold first (otherwise both must be empty)")
    load.set_defaults(handler=run_import)


def tables() -> tuple[str, ...]:
    """Every table an export carries: the outbox's, then the desk's (they live in the store file)."""
    from statusd.desk import db as desk_db
    from statusd.outbox.schema import DATA_TABLES

    return DATA_TABLES + desk_db.TABLES


def _open(args: argparse.Namespace, config: Config, current: bool = True) -> SqlStore:
    from statusd.outbox.opening import open_store
    from statusd.outbox.store import SqlStore

    store = open_store(config, paths.state_dir(args.state_dir, config), current=current)
    assert isinstance(store, SqlStore)
    return store


def run_migrate(args: argparse.Namespace) -> int:
    from statusd.outbox.schema import VERSION

    config = load_config(args)
    store = _open(args, config, current=False)
    try:
        # A SQLite file is brought up to date as soon as it is opened: say what that did.
        before = getattr(store, "found_version", None)
        before = store.schema_version() if before is None else before
        made = store.migrate() or ([VERSION] if before < VERSION else [])
        if config.store.postgresql:  # the cluster's own tables (the lease, the wanted status rows)
            _cluster_tables(config)
            _desk_tables(store, config, paths.state_dir(args.state_dir, config))  # its accounts, on every node
    finally:
        store.close()
    if not made:
        print(f"the store {store.label} holds schema version {VERSION} already; nothing to do.")
    elif before == 0:
        print(f"the store {store.label}: created its tables (schema version {VERSION}).")
    else:
        print(f"the store {store.label}: upgraded from schema version {before} to {VERSION}.")
    return 0


def _wanted_rows(config: Config) -> WantedRows:
    from statusd.sources.status import rows

    _cluster_tables(config)
    return rows.WantedRows(config, rows.address(config))


def _status_place(config: Config) -> str:
    return "the cluster's wanted status rows" if config.store.postgresql else str(config.status_file)


def _status_text(config: Config) -> str | None:
    """What the wanted status says, as status.yaml text: the file, or a cluster's rows."""
    if config.store.postgresql:
        return _wanted_rows(config).export_text()
    return config.status_file.read_text(encoding="utf-8") if config.status_file.exists() else None


def _cluster_tables(config: Config) -> None:
    import psycopg

    from statusd.cluster import schema
    from statusd.sources.status import rows

    try:
        with psycopg.connect(rows.address(config), autocommit=True, connect_timeout=10) as conn:
            schema.migrate(conn)
    except psycopg.Error as err:
        raise UserError(f"the cluster's tables could not be made: {str(err).strip().splitlines()[0]}") from err


def run_export(args: argparse.Namespace) -> int:
    from statusd.files import write_atomic

    config = load_config(args)
    state = paths.state_dir(args.state_dir, config)
    if not config.store.postgresql and not paths.store_path(state).exists():
        raise UserError(f"nothing to export: the store {paths.store_path(state)} does not exist yet")
    store = _open(args, config)
    try:
        rows = store.dump_all(tables())
    finally:
        store.close()
    status = _status_text(config)
    lines = [{"format": FORMAT, "version": FORMAT_VERSION, "from": store.dialect.name}]
    lines += [{"table": table, "row": row} for table, items in rows.items() for row in items]
    lines.append({"status_file": status})
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    write_atomic(Path(args.file), text.encode("utf-8"), mode=0o600)
    print(f"exported {_counts(rows)} and {'status.yaml' if status is not None else 'no status.yaml'} "
          f"from {store.label} to {args.file}.")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from statusd.files import write_atomic

    config = load_config(args)
    rows, status = read_export(Path(args.file))
    if status is not None and not config.store.postgresql and config.status_file.exists() and not args.replace:
        if config.status_file.read_text(encoding="utf-8") != status:
            raise UserError(f"{config.status_file} already holds a status; import-state would replace it "
                            "(use --replace to do so)")
    store = _open(args, config, current=False)
    try:
        made = store.migrate()
        held = store.count(tables())
        if held and not args.replace:
            raise UserError(f"the store {store.label} already holds {held} rows; import-state fills an empty "
                            "store only (use --replace to delete what it holds first)")
        _desk_tables(store, config, paths.state_dir(args.state_dir, config))
        store.restore(rows, replace=args.replace)
    finally:
        store.close()
    if status is not None and config.store.postgresql:  # a cluster's wanted status is rows, not the file
        _wanted_rows(config).import_text(status, args.replace)
    elif status is not None:
        write_atomic(config.status_file, status.encode("utf-8"))
    print(f"imported {_counts(rows)} into {store.label}{' (its tables created first)' if made else ''}"
          f"{f'; the status written to {_status_place(config)}' if status is not None else ''}.")
    return 0


def _desk_tables(store: SqlStore, config: Config, state: Path) -> None:
    """The desk's tables, made as the desk makes them (in SQLite, by the desk itself)."""
    from statusd.desk import db as desk_db

    if not config.store.postgresql:
        desk_db.connect(paths.store_path(state)).close()
        return
    store.ensure(";".join(desk_db.postgres_schema()))


def read_export(path: Path) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """The rows per table (in the order they must be written) and status.yaml's text; UserError if unreadable."""
    known = tables()
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in known}
    status: str | None = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err})") from err
    for number, line in enumerate(lines, 1):
        item = _line(path, number, line)
        if number == 1:
            if item.get("format") != FORMAT or item.get("version") != FORMAT_VERSION:
                raise UserError(f"{path}:1: is not a statusd export-state file (format {FORMAT} {FORMAT_VERSION})")
        elif "status_file" in item:
            status = item["status_file"]
        elif item.get("table") in rows and isinstance(item.get("row"), dict):
            rows[item["table"]].append(item["row"])
        else:
            raise UserError(f"{path}:{number}: holds neither a row of a table statusd keeps ({', '.join(known)}) "
                            "nor the status file")
    if not lines:
        raise UserError(f"{path}: is empty; it is not a statusd export-state file")
    return rows, status


def _line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except ValueError:
        item = None
    if not isinstance(item, dict):
        raise UserError(f"{path}:{number}: is not a JSON object; the file is not an export-state file, or damaged")
    return item


def _counts(rows: dict[str, list[dict[str, Any]]]) -> str:
    return ", ".join(f"{len(items)} {table}" for table, items in rows.items() if items) or "no rows"
