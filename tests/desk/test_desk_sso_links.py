"""desk.sso in statusd.yaml and the links (e-mail, subject) single sign-on matches accounts on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.desk import db as desk_db
from statusd.desk.accounts import Accounts
from statusd.desk.sso import UNKNOWN, SsoRefused, match
from statusd.errors import ConfigError, UserError
from tests.config.test_config import GOOD, load, problems

pytestmark = pytest.mark.unit

SSO = "desk:\n  sso:\n    issuer: https://login.library.test/realms/staff/\n    client_id: statusd\n"
SITES = ("main", "annexe")


class TestConfig:
    """The issuer, client id and a secret by reference; a secret written in the file is refused."""

    def test_loads_with_a_secret_by_reference(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TEST_SSO_SECRET", "a-real-looking-secret-value")
        sso = load(tmp_path, GOOD + SSO + "    client_secret: {env: TEST_SSO_SECRET}\n").desk.sso
        assert sso is not None and sso.issuer == "https://login.library.test/realms/staff"
        assert sso.client_id == "statusd" and sso.client_secret.read() == "a-real-looking-secret-value"

    def test_absent_means_no_sso(self, tmp_path: Path) -> None:
        assert load(tmp_path, GOOD).desk.sso is None

    @pytest.mark.parametrize(("text", "wanted"), [
        (SSO + "    client_secret: hunter2hunter2\n", "desk.sso.client_secret: secrets are never written"),
        (SSO, "desk.sso.client_secret: is needed"),
        (SSO.replace("https://login.library.test/realms/staff/", "login.library.test") +
         "    client_secret: {env: X}\n", "desk.sso.issuer: should be an http:// or https:// URL"),
        ("desk:\n  sso:\n    issuer: https://login.library.test\n    client_secret: {env: X}\n",
         "desk.sso.client_id: is required"),
        (SSO + "    client_secret: {env: X}\n    scope: admin\n", "desk.sso.scope: unknown key"),
    ])
    def test_mistakes_are_named(self, tmp_path: Path, text: str, wanted: str) -> None:
        found = problems(tmp_path, GOOD + text)
        assert any(wanted in p for p in found), found

    def test_the_secret_never_shows_in_problems(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            load(tmp_path, GOOD + SSO + "    client_secret: hunter2hunter2\n")
        assert "hunter2" not in str(caught.value)


@pytest.fixture
def accounts(desk_tables: desk_db.DeskDb) -> Accounts:
    """Two accounts, on each engine in turn (the links are looked up in the store)."""
    people = Accounts(desk_tables)
    people.add("annexe-desk", "Annexe desk", "desk", ["annexe"], SITES)
    people.add("main-lead", "Main lead", "lead", ["main"], SITES)
    return people


class TestLinks:
    """A person is found by subject first, by verified e-mail only while no subject is linked."""

    def test_email_then_subject(self, accounts: Accounts) -> None:
        accounts.link("annexe-desk", "Ada@Library.test", None)
        person = match(accounts, {"sub": "s-1", "email": "ada@library.test", "email_verified": True})
        assert person.name == "annexe-desk" and person.role == "desk" and person.sites == ("annexe",)
        assert accounts.require("annexe-desk").sso_subject == "s-1"
        # Another subject presenting the same e-mail later no longer gets in.
        with pytest.raises(SsoRefused, match=UNKNOWN.split(";")[0]):
            match(accounts, {"sub": "s-2", "email": "ada@library.test", "email_verified": True})

    def test_unverified_email_is_not_enough(self, accounts: Accounts) -> None:
        accounts.link("main-lead", "lead@library.test", None)
        with pytest.raises(SsoRefused):
            match(accounts, {"sub": "x", "email": "lead@library.test", "email_verified": False})
        with pytest.raises(SsoRefused):
            match(accounts, {"sub": "x", "email": "lead@library.test"})

    def test_disabled_is_refused(self, accounts: Accounts) -> None:
        accounts.link("main-lead", None, "grace")
        accounts.set_disabled("main-lead", True)
        with pytest.raises(SsoRefused, match="main-lead is disabled"):
            match(accounts, {"sub": "grace"})

    def test_one_person_one_account(self, accounts: Accounts) -> None:
        accounts.link("main-lead", "lead@library.test", "grace")
        with pytest.raises(UserError, match="main-lead already has this e-mail"):
            accounts.link("annexe-desk", "lead@library.test", None)
        with pytest.raises(UserError, match="main-lead already has this single sign-on subject"):
            accounts.link("annexe-desk", None, "grace")
        assert accounts.link("main-lead", "", "").sso_subject is None  # "" clears

    def test_a_store_without_the_columns_gains_them(self, tmp_path: Path) -> None:
        old = sqlite3.connect(tmp_path / "old.db")
        old.executescript(desk_db.SCHEMA)  # the tables as the first desk release made them
        old.execute("INSERT INTO desk_users (name, display, role, sites, created_at, changed_at)"
                    " VALUES ('boss', 'Boss', 'admin', '[]', 0, 0)")
        old.commit()
        old.close()
        db = desk_db.connect(tmp_path / "old.db")
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(desk_users)")}
        finally:
            db.close()
        assert {"email", "sso_subject"} <= columns
        db = desk_db.connect(tmp_path / "old.db")  # and opening it again changes nothing
        try:
            assert Accounts(db).require("boss").email is None
        finally:
            db.close()

    @settings(max_examples=50, deadline=None)
    @given(st.text(max_size=80))
    def test_hostile_subjects_match_nothing(self, subject: str) -> None:
        db = sqlite3.connect(":memory:")
        db.row_factory = sqlite3.Row
        db.executescript(desk_db.SCHEMA)
        desk_db._link_columns(db)
        people = Accounts(desk_db.SqliteDesk(db))
        people.add("main-lead", "Main lead", "lead", ["main"], SITES)
        people.link("main-lead", None, "grace")
        if subject != "grace":
            with pytest.raises(SsoRefused):
                match(people, {"sub": subject, "email": subject, "email_verified": True})
