"""The wanted status: one interface for reading it and changing one entry of it.

Today it is status.yaml (`StatusFile`); a shared database can back the same
interface when several daemons serve one network. Writers (`statusd set`,
the desk API and pages, undo) go through it, never to the file directly.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from statusd.config.load import Config
from statusd.model import StatusEntry, Target, Wanted
from statusd.sources.status import edit as status_edit
from statusd.sources.status import file as status_file


class WantedStatus(Protocol):
    """Where what staff want said is kept."""

    def read(self) -> Wanted:
        """Every target's entry; raises ConfigError (located) when the source is broken."""
        ...

    def set(self, target: Target, entry: StatusEntry, lock: bool = True) -> str | None:
        """Replace one target's entry, returning the new file text's digest for the daemon's nudge
        (nudge.py; None where the source tells the daemons itself, as rows do by NOTIFY); raises
        UserError and changes nothing when it cannot."""
        ...

    def locked(self) -> AbstractContextManager[None]:
        """Hold off every other writer (undo changes the status and the store together)."""
        ...

    def describe(self) -> str:
        """Where it lives, for a person: a file's path."""
        ...


class StatusFile:
    """The wanted status in status.yaml, written locked and atomically by edit.py."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.path: Path = config.status_file

    def read(self) -> Wanted:
        return status_file.read(self.path, self.config)

    def set(self, target: Target, entry: StatusEntry, lock: bool = True) -> str:
        return status_edit.set_entry(self.path, self.config, target, entry, lock=lock)

    def locked(self) -> AbstractContextManager[None]:
        return status_edit.locked(self.path)

    def describe(self) -> str:
        return str(self.path)


def for_config(config: Config) -> WantedStatus:
    """The wanted status this configuration uses: status.yaml, or the rows of a cluster's database."""
    if config.store.dsn is not None:
        # Imported here: a `statusd set` on status.yaml must not load psycopg and structlog (issue 15).
        from statusd.sources.status import rows

        return rows.WantedRows(config, rows.address(config))
    return StatusFile(config)
