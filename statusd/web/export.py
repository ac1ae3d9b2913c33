"""Write the public documents to a directory on every change, for a web server or CDN to serve.

Each file is replaced atomically (a temporary file in the same directory,
fsync, rename), so a reader sees the old file or the new one, never a part.
Files whose content did not change are not touched. Writing happens in a
thread so a slow disk never holds up the event loop; only the latest set of
files is written when changes come faster than the disk.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path

import structlog

from statusd import files

log = structlog.get_logger()


def write_atomic(path: Path, body: bytes) -> None:
    """Replace `path` with `body` so that no reader ever sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, body)


class Exporter:
    """Keeps a directory's files equal to the latest submitted set."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: dict[str, bytes] | None = None
        self._wake = asyncio.Event()
        self._written: dict[str, str] = {}

    def submit(self, files: Mapping[str, bytes]) -> None:
        """Ask for `files` to be written; a later call before they are replaces them."""
        self._pending = dict(files)
        self._wake.set()

    async def run(self) -> None:
        """Write each submitted set, in a thread, until cancelled."""
        while True:
            await self._wake.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending now."""
        self._wake.clear()
        files, self._pending = self._pending, None
        if files is not None:
            try:
                await asyncio.to_thread(self.write, files)
            except OSError as err:
                log.error("export_failed", directory=str(self.directory), reason=str(err))

    def write(self, files: Mapping[str, bytes]) -> list[str]:
        """Write the files that changed; return their names."""
        written = []
        for name, body in files.items():
            digest = hashlib.sha256(body).hexdigest()
            path = self.directory / name
            if (self._written.get(name) == digest and path.exists()) or _same(path, body):
                self._written[name] = digest
                continue
            write_atomic(path, body)
            self._written[name] = digest
            written.append(name)
        if written:
            log.info("exported", directory=str(self.directory), files=written)
        return written


def _same(path: Path, body: bytes) -> bool:
    try:
        return path.stat().st_size == len(body) and path.read_bytes() == body
    except OSError:
        return False
