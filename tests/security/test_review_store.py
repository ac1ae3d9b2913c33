"""Hostile review of the `store:` keys: a password in the address in any spelling libpq reads is refused,
a malformed address or a timeout of nothing is one located sentence at load, a password reference that
is not there is one sentence at open, and no password is ever echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statusd import loading
from statusd.errors import ConfigError, UserError
from statusd.outbox.opening import open_store
from statusd.outbox.records import StoreError
from tests.conftest import BASE, CONSOLE, REPO
from tests.support.postgres import PostgresServer

SECRET = "hunter2secret"


def write(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "statusd.yaml"
    path.write_text(BASE.format(alerts=REPO / "alerts", channels=CONSOLE, deadline="1h") + store + "\n",
                    encoding="utf-8")
    return path


def refused(tmp_path: Path, store: str, *, field: str = "store") -> str:
    path = write(tmp_path, store)
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    text = str(caught.value)
    assert SECRET not in text and "Traceback" not in text
    line = next(line for line in text.splitlines() if f": {field}:" in line)
    assert line.startswith(f"{path}:")
    return line


@pytest.mark.unit
class TestAddress:
    @pytest.mark.parametrize("dsn", [
        f"postgresql://u:{SECRET}@db.example.org/statusd",
        f"postgresql://u@db.example.org/statusd?password={SECRET}",
        f"postgresql://u@db.example.org/statusd?pass%77ord={SECRET}",      # libpq decodes the key
        f"postgresql://u@db.example.org/statusd?%70assword={SECRET}",
        f"postgresql://u@db.example.org/statusd?sslpassword={SECRET}",     # the client key's passphrase
        f"postgresql://u@db.example.org/statusd?sslmode=require&password={SECRET}",
    ])
    def test_password_in_any_spelling(self, tmp_path: Path, dsn: str) -> None:
        assert "holds a password" in refused(tmp_path, f"store: '{dsn}'")

    @pytest.mark.parametrize("dsn", [
        "postgresql://u@db.example.org:notaport/statusd",
        "postgresql://u@db1.example.org,db2.example.org:99999/statusd",
        f"postgresql://u@db.example.org/{SECRET}%ZZ",
        f"postgresql://u@db.example.org/statusd?{SECRET}=1",
        f"host=db.example.org password={SECRET}",
        "postgresql://u@[::1/statusd",
    ])
    def test_malformed_is_one_sentence(self, tmp_path: Path, dsn: str) -> None:
        line = refused(tmp_path, f"store: '{dsn}'")
        assert "postgresql://USER@HOST" in line

    def test_good_addresses(self, tmp_path: Path) -> None:
        for dsn in ("postgresql://statusd@db.example.org/statusd", "postgres://statusd@db:6432/statusd?sslmode=verify-full",
                    "postgresql://statusd@db1:5432,db2:5433/statusd?target_session_attrs=read-write"):
            assert loading.load(write(tmp_path, f"store: '{dsn}'")).store.dsn == dsn

    @pytest.mark.parametrize("timeout", ["0s", "0.1s"])
    def test_timeout_of_nothing(self, tmp_path: Path, timeout: str) -> None:
        """store_timeout: 0 became statement_timeout=0, which PostgreSQL reads as "wait for ever"."""
        line = refused(tmp_path, f"store: postgresql://u@db.example.org/statusd\nstore_timeout: {timeout}",
                       field="store_timeout")
        assert "at least 1s" in line


@pytest.mark.unit
@pytest.mark.parametrize("reference", ["{env: STATUSD_REVIEW_MISSING}", "{file: /nonexistent/statusd/pg-password}"])
def test_missing_password_reference(tmp_path: Path, reference: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATUSD_REVIEW_MISSING", raising=False)
    config = loading.load(write(tmp_path, f"store: postgresql://u@127.0.0.1:1/statusd\nstore_password: {reference}"))
    with pytest.raises(UserError) as caught:
        open_store(config, tmp_path / "state")
    text = str(caught.value)
    assert "store_password" in text and "\n" not in text and text.startswith(str(config.path))


@pytest.mark.e2e
def test_wrong_password_is_not_echoed(tmp_path: Path, postgres_server: PostgresServer, postgres_database: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A real server refusing the password: the sentence names the store, never the password, in the CLI too."""
    dsn = postgres_server.dsn(postgres_database, password=False)
    monkeypatch.setenv("STATUSD_REVIEW_PG", SECRET)
    path = write(tmp_path, f"store: '{dsn}'\nstore_password: {{env: STATUSD_REVIEW_PG}}\nstore_timeout: 2s")
    with pytest.raises(StoreError) as caught:
        open_store(loading.load(path), tmp_path / "state")
    assert "password authentication failed" in str(caught.value) and SECRET not in str(caught.value)
    done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(path), "show"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env={"STATUSD_REVIEW_PG": SECRET, "PATH": "/usr/bin"})
    assert done.returncode != 0
    assert SECRET not in done.stdout + done.stderr and "Traceback" not in done.stderr
