"""Desk accounts, enrolment, tokens and login throttling, against a real store: the SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import argon2
import pytest

from statusd.desk import passwords
from statusd.desk.accounts import Accounts
from statusd.desk.db import DeskDb
from statusd.desk.limits import Limits
from statusd.desk.login import WRONG, Desk, LoginRefused, authenticate
from statusd.desk.tokens import PREFIX, SESSION, TOKEN, Refused, Tokens
from statusd.errors import UserError

pytestmark = pytest.mark.unit

SITES = ("main", "annexe")
GOOD = "correct horse battery staple"


@pytest.fixture
def db(desk_tables: DeskDb) -> DeskDb:
    """The desk's tables, on each engine in turn."""
    return desk_tables


@pytest.fixture
def desk(db: DeskDb) -> Desk:
    desk = Desk.open(db)
    desk.accounts.add("annexe-desk", "Annexe desk", "desk", ["annexe"], SITES)
    desk.accounts.enrol(desk.accounts.enrolment("annexe-desk", 86400), GOOD)
    return desk


class TestAccounts:
    """Accounts are checked when made and enrol once with a link that expires."""

    @pytest.mark.parametrize(("name", "role", "sites", "words"), [
        ("Annexe Desk", "desk", ["annexe"], "lower-case"),
        ("annexe-desk", "boss", ["annexe"], "unknown role 'boss'"),
        ("annexe-desk", "desk", ["nowhere"], "unknown site 'nowhere'"),
        ("annexe-desk", "desk", [], "needs --sites"),
    ])
    def test_bad_accounts_are_refused_in_one_sentence(self, db: DeskDb, name: str, role: str,
                                                      sites: list[str], words: str) -> None:
        with pytest.raises(UserError, match=words):
            Accounts(db).add(name, "x", role, sites, SITES)
        assert Accounts(db).all() == []

    def test_the_enrolment_code_works_once(self, db: DeskDb) -> None:
        accounts = Accounts(db)
        accounts.add("main-desk", "Main desk", "desk", ["main"], SITES)
        code = accounts.enrolment("main-desk", 86400)
        assert accounts.enrol(code, GOOD).name == "main-desk"
        with pytest.raises(UserError, match="unknown, used or expired"):
            accounts.enrol(code, GOOD)
        stored = db.execute("SELECT password FROM desk_users").fetchone()[0]
        assert stored.startswith("$argon2id$") and GOOD not in stored

    def test_an_expired_code_is_refused(self, db: DeskDb) -> None:
        accounts = Accounts(db)
        accounts.add("main-desk", "Main desk", "desk", ["main"], SITES)
        code = accounts.enrolment("main-desk", -1)
        with pytest.raises(UserError, match="expired"):
            accounts.enrol(code, GOOD)

    def test_a_short_password_is_refused(self, db: DeskDb) -> None:
        accounts = Accounts(db)
        accounts.add("main-desk", "Main desk", "desk", ["main"], SITES)
        with pytest.raises(UserError, match="at least 10 characters"):
            accounts.enrol(accounts.enrolment("main-desk", 86400), "short")

    def test_history_names_the_person_and_the_account(self, desk: Desk) -> None:
        assert desk.accounts.require("annexe-desk").by == "Annexe desk (annexe-desk)"


class TestLogin:
    """Passwords are checked with argon2id; failures lock the account and say until when."""

    def test_the_right_password_logs_in(self, desk: Desk) -> None:
        assert authenticate(desk, "annexe-desk", GOOD, "192.0.2.1").name == "annexe-desk"

    def test_twenty_wrong_passwords_lock_the_account_with_a_clear_message(self, desk: Desk) -> None:
        sentences = []
        for attempt in range(20):
            with pytest.raises(LoginRefused) as refused:
                authenticate(desk, "annexe-desk", f"wrong {attempt}", "192.0.2.1")
            sentences.append(str(refused.value))
        assert sentences[0] == WRONG
        assert sentences[-1].startswith("too many failed logins for the account annexe-desk; try again after ")
        assert "UTC (in " in sentences[-1]
        with pytest.raises(LoginRefused, match="too many failed logins"):
            authenticate(desk, "annexe-desk", GOOD, "192.0.2.1")  # even the right one, while locked
        later = time.time() + 2 * 3600
        assert authenticate(desk, "annexe-desk", GOOD, "192.0.2.9", now=later).name == "annexe-desk"

    def test_many_accounts_from_one_address_lock_the_address(self, desk: Desk) -> None:
        for attempt in range(25):
            with pytest.raises(LoginRefused):
                authenticate(desk, f"guess-{attempt}", "wrong password", "198.51.100.7")
        with pytest.raises(LoginRefused, match="for this address"):
            authenticate(desk, "annexe-desk", GOOD, "198.51.100.7")
        assert authenticate(desk, "annexe-desk", GOOD, "192.0.2.1").name == "annexe-desk"

    def test_an_unknown_account_is_refused_like_a_wrong_password(self, desk: Desk) -> None:
        with pytest.raises(LoginRefused) as unknown:
            authenticate(desk, "nobody", GOOD, "192.0.2.1")
        with pytest.raises(LoginRefused) as wrong:
            authenticate(desk, "annexe-desk", "not the password", "192.0.2.2")
        assert str(unknown.value) == str(wrong.value) == WRONG

    def test_unknown_and_known_accounts_take_the_same_time(self, desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
        # The issue asks for no difference beyond noise. What sets the time is the argon2
        # verification: both paths must do exactly one, at the same cost parameters. (A
        # wall-clock comparison here failed on a loaded 2-core machine; speed is for bench/.)
        real = passwords._HASHER
        verified: list[tuple[int, int, int]] = []

        class Counting:
            def verify(self, stored: str, password: str) -> bool:
                p = argon2.extract_parameters(stored)
                verified.append((p.time_cost, p.memory_cost, p.parallelism))
                return real.verify(stored, password)

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

        monkeypatch.setattr(passwords, "_HASHER", Counting())
        costs = {}
        for name in ("annexe-desk", "nobody-here"):
            verified.clear()
            with pytest.raises(LoginRefused):
                authenticate(desk, name, "wrong password", "203.0.113.9")
            desk.limits.clear(name)
            assert len(verified) == 1, (name, verified)
            costs[name] = verified[0]
        assert costs["annexe-desk"] == costs["nobody-here"], costs

    def test_a_name_or_password_with_a_nul_is_just_wrong(self, desk: Desk) -> None:
        for name, password in (("annexe-desk\x00", GOOD), ("annexe-desk", GOOD + "\x00")):
            with pytest.raises(LoginRefused) as refused:
                authenticate(desk, name, password, "192.0.2.1")
            assert str(refused.value) == WRONG
        assert authenticate(desk, "annexe-desk", GOOD, "192.0.2.1").name == "annexe-desk"

    def test_a_disabled_account_cannot_log_in(self, desk: Desk) -> None:
        desk.accounts.set_disabled("annexe-desk", True)
        with pytest.raises(LoginRefused, match="wrong account name or password"):
            authenticate(desk, "annexe-desk", GOOD, "192.0.2.1")

    def test_a_huge_password_is_refused_without_burning_the_cpu(self, desk: Desk) -> None:
        assert passwords.verify(desk.accounts.password_hash("annexe-desk"), "x" * 10_000_000) is False


class TestTokens:
    """Tokens are stored hashed, revocable, and expire after the idle time."""

    def test_only_the_hash_is_stored(self, desk: Desk, db: DeskDb) -> None:
        token, _ = Tokens(db, desk.accounts).issue("annexe-desk", TOKEN, "laptop")
        rows = db.execute("SELECT * FROM desk_tokens").fetchall()
        assert all(token not in str(tuple(row)) for row in rows)
        # sdt_<id>_<secret>; the secret itself may hold "_" (urlsafe base64): split once.
        secret = token.removeprefix(PREFIX).split("_", 1)[1]
        assert len(secret) >= 40 and secret not in str([tuple(r) for r in rows])

    def test_a_revoked_token_is_refused(self, desk: Desk, db: DeskDb) -> None:
        tokens = Tokens(db, desk.accounts)
        token, _ = tokens.issue("annexe-desk", TOKEN, "laptop")
        assert tokens.check(token, 3600).person.name == "annexe-desk"
        assert tokens.revoke("annexe-desk", tokens.listed("annexe-desk")[0].id) == 1
        with pytest.raises(Refused, match="revoked"):
            tokens.check(token, 3600)

    def test_an_idle_token_expires(self, desk: Desk, db: DeskDb) -> None:
        tokens = Tokens(db, desk.accounts)
        token, _ = tokens.issue("annexe-desk", SESSION, "phone")
        with pytest.raises(Refused, match="expired after 1 hour"):
            tokens.check(token, 3600, now=time.time() + 3601)

    def test_a_disabled_account_s_tokens_stop_working(self, desk: Desk, db: DeskDb) -> None:
        tokens = Tokens(db, desk.accounts)
        token, _ = tokens.issue("annexe-desk", TOKEN, "laptop")
        desk.accounts.set_disabled("annexe-desk", True)
        with pytest.raises(Refused, match="disabled"):
            tokens.check(token, 3600)

    def test_an_unknown_token_is_refused(self, desk: Desk, db: DeskDb) -> None:
        with pytest.raises(Refused, match="not known"):
            Tokens(db, desk.accounts).check("sdt_0000_nothing", 3600)


class TestLimits:
    """A lock grows with further failures but never past an hour."""

    def test_the_lock_is_capped(self, db: DeskDb) -> None:
        limits = Limits(db)
        now = 1_000_000.0
        for _ in range(200):
            limits.failed("x", "a", now)
        locked = limits.locked("x", "a", now)
        assert locked is not None and locked.until == now + 3600

    def test_failures_through_two_connections_add_up(self, open_desk: Callable[[], DeskDb]) -> None:
        # Two daemons (a cluster's nodes, or the daemon and `statusd user`) count into the same
        # row at once: each read-and-write is one transaction, so no failure is lost.
        one, other = Limits(open_desk()), Limits(open_desk())
        now = 1_000_000.0

        def guess(limits: Limits) -> None:
            for _ in range(15):
                limits.failed("x", "a", now)

        threads = [threading.Thread(target=guess, args=(limits,)) for limits in (one, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        locked = one.locked("x", "a", now)
        # 30 failures, 25 past the free 5: the lock has doubled to its cap of an hour.
        row = one._db.execute("SELECT failures FROM desk_failures WHERE key = 'account:x'").fetchone()
        assert row[0] == 30 and locked is not None and locked.until == now + 3600
