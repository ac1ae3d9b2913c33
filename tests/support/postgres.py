"""A real PostgreSQL server on 127.0.0.1, on a free port, for the PostgreSQL store tests.

`make test` installs Debian's package (tests/install-postgres.sh). One throw-away
cluster is started per test session (`postgres_server`), in a temporary directory,
as the `postgres` user when the tests run as root (PostgreSQL refuses to run as
root); fsync is off, as nothing here must survive the machine. Each test that
asks for `postgres_dsn` gets a database of its own, created for it and dropped
after it. The role `statusd` has a password, so the password-by-reference path
is the one the tests take.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

USER = "statusd"
PASSWORD = "statusd-test-password"  # a throw-away cluster's password, on 127.0.0.1 only


def postgres_bindir() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/NN/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed; run tests/install-postgres.sh (make test does)")
    return Path(found[-1]).parent


class PostgresServer:
    """One cluster listening on 127.0.0.1:port, with a superuser `statusd` that has a password."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._count = 0

    def dsn(self, database: str = "postgres", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        self._initdb()
        for _ in range(5):
            self.port = _unused_port()
            if self._launch():
                return self
        raise RuntimeError(f"postgres could not listen:\n{self.log.read_text(errors='replace')[-2000:]}")

    def _initdb(self) -> None:
        pwfile = self.directory / "pwfile"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        _give_away(self.directory)
        _run_as_owner([str(postgres_bindir() / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                       "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        pwfile.unlink()

    def _launch(self, timeout: float = 20.0) -> bool:
        options = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                   "-c", "max_connections=200", "-c", f"unix_socket_directories={self.directory}"]
        command = [str(postgres_bindir() / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
                   "-p", str(self.port), *options]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(_as_owner(command), stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections within {timeout} s")

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection in autocommit mode to the `postgres` database."""
        return psycopg.connect(self.dsn(), autocommit=True)

    def create_database(self) -> str:
        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate(self, database: str) -> int:
        """Kill every backend connected to `database` (as a cut network would); return how many."""
        with self.admin() as conn:
            row = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: PostgreSQL's smart shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL cluster, started on first use and stopped at the end."""
    directory = Path(tempfile.mkdtemp(prefix="statusd-pg-"))
    server = PostgresServer(directory)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The name of a fresh, empty database of this test's own, dropped after it."""
    name = postgres_server.create_database()
    try:
        yield name
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer, postgres_database: str) -> str:
    """A DSN (with its password) for this test's own fresh database."""
    return postgres_server.dsn(postgres_database)


def _owner() -> pwd.struct_passwd | None:
    """The `postgres` account when running as root; None when we may run the server ourselves."""
    return pwd.getpwnam("postgres") if os.geteuid() == 0 else None


def _as_owner(command: list[str]) -> list[str]:
    owner = _owner()
    return command if owner is None else ["runuser", "-u", owner.pw_name, "--", *command]


def _run_as_owner(command: list[str]) -> None:
    result = subprocess.run(_as_owner(command), capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.decode(errors='replace')[-2000:]}")


def _give_away(directory: Path) -> None:
    owner = _owner()
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        for child in directory.iterdir():
            os.chown(child, owner.pw_uid, owner.pw_gid)


def _unused_port() -> int:
    """A port nothing listens on now; the server may still lose it, and `start` then tries another."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
