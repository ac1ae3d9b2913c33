"""The desk on a cluster: two daemons on one PostgreSQL database share accounts, tokens and login locks,
so staff log in, flip and are locked out alike on any node; and a single node's users move there.

Real daemons (`statusd run`), a real PostgreSQL server, the real `statusd user`,
`migrate`, `export-state` and `import-state` commands.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from statusd import loading
from statusd.desk import db as desk_db
from statusd.desk.accounts import Accounts
from statusd.desk.api import DeskApi
from statusd.desk.login import WRONG
from tests.cluster.nodes import Nodes
from tests.conftest import ALERTS, BASE, CONSOLE
from tests.desk.server import PASSWORD, DeskServer
from tests.support.daemon import Daemon
from tests.support.postgres import PASSWORD as DB_PASSWORD
from tests.support.postgres import PostgresServer, _unused_port

pytestmark = pytest.mark.e2e

CONFIG = BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h")


@dataclass
class Pair:
    """Two nodes of one cluster, each as the desk API's client sees it."""

    nodes: Nodes
    a: DeskServer
    b: DeskServer

    def add(self, name: str, sites: str) -> str:
        """`statusd user add` on node a: the enrolment code it printed."""
        link = self.a.daemon.cli("user", "add", name, "--sites", sites).stdout.strip().splitlines()[-1]
        return link.rsplit("/", 1)[1]

    def enrolled(self, name: str, sites: str) -> None:
        """An account made on node a, its password set through node b."""
        status, answer = self.b.call("POST", "/api/v1/enrol", {"code": self.add(name, sites), "password": PASSWORD})
        assert status == 200, answer


def login(node: DeskServer, name: str, password: str = PASSWORD) -> tuple[int, dict[str, object]]:
    return node.call("POST", "/api/v1/login", {"account": name, "password": password})


def desk_tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'desk%'")
        return {str(row[0]) for row in rows}


@pytest.fixture(scope="module")
def pair(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    database = postgres_server.create_database()
    root = tmp_path_factory.mktemp("desk-cluster")
    nodes = Nodes.make(root, CONFIG, postgres_server.dsn(database, password=False), DB_PASSWORD, {}, count=2)
    first = nodes.nodes[0].daemon
    first.cli("migrate")  # as an operator does once: no import, a fresh cluster
    try:
        nodes.start()
        yield Pair(nodes, DeskServer(first, root / "n1"), DeskServer(nodes.nodes[1].daemon, root / "n2"))
    finally:
        nodes.stop()
        postgres_server.drop_database(database)


class TestMigrate:
    """`statusd migrate` makes the desk's tables too, so a fresh cluster's desk needs no import."""

    def test_the_desk_tables_are_made(self, tmp_path: Path, postgres_server: PostgresServer,
                                      postgres_database: str) -> None:
        nodes = Nodes.make(tmp_path, CONFIG, postgres_server.dsn(postgres_database, password=False),
                           DB_PASSWORD, {}, count=1)
        assert desk_tables(postgres_server.dsn(postgres_database)) == set()
        nodes.nodes[0].daemon.cli("migrate")
        assert desk_tables(postgres_server.dsn(postgres_database)) == set(desk_db.TABLES)


class TestCluster:
    """Accounts, tokens and lockouts are the cluster's, not a node's."""

    def test_an_account_made_on_one_node_logs_in_on_both(self, pair: Pair) -> None:
        pair.enrolled("main-desk", "main")
        for node in (pair.a, pair.b):
            status, answer = login(node, "main-desk")
            assert status == 200 and answer["account"] == "main-desk", answer
        listed = pair.b.daemon.cli("user", "list").stdout
        assert "main-desk" in listed and "active" in listed

    def test_a_token_from_one_node_works_on_the_other_until_revoked(self, pair: Pair) -> None:
        pair.enrolled("annexe-desk", "annexe")
        _, answer = login(pair.a, "annexe-desk")
        token = str(answer["token"])
        status, shown = pair.b.call("GET", "/api/v1/status", token=token)
        assert status == 200 and shown["exit"] == 0, shown
        assert pair.b.call("POST", "/api/v1/logout", {}, token=token)[0] == 200
        for node in (pair.a, pair.b):
            status, refused = node.call("GET", "/api/v1/status", token=token)
            assert status == 401 and "revoked" in str(refused["error"]), refused

    def test_a_token_revoked_with_the_command_stops_on_both(self, pair: Pair) -> None:
        pair.enrolled("main-lead", "main")
        token = str(login(pair.b, "main-lead")[1]["token"])
        assert pair.a.call("GET", "/api/v1/status", token=token)[0] == 200
        assert "1 token(s) of main-lead revoked" in pair.a.daemon.cli("user", "revoke", "main-lead").stdout
        assert [node.call("GET", "/api/v1/status", token=token)[0] for node in (pair.a, pair.b)] == [401, 401]
        assert "revoked" in pair.b.daemon.cli("user", "tokens", "main-lead").stdout

    def test_failures_on_one_node_lock_the_account_on_the_other(self, pair: Pair) -> None:
        pair.enrolled("guessed", "annexe")
        for attempt in range(6):  # five are free; the sixth locks
            assert login(pair.a, "guessed", f"wrong guess {attempt}")[0] == 401
        status, answer = login(pair.b, "guessed")
        assert status == 401, answer
        assert str(answer["error"]).startswith("too many failed logins for the account guessed"), answer
        pair.b.daemon.cli("user", "reset", "guessed")  # how a locked-out person gets back in
        status, answer = login(pair.a, "guessed")  # the lock lifted, the password forgotten: on every node
        assert status == 401 and answer["error"] == WRONG, answer


class TestImport:
    """A single node's users, moved with export-state and import-state, log in on a PostgreSQL node."""

    def test_imported_users_log_in(self, tmp_path: Path, postgres_server: PostgresServer,
                                   postgres_database: str) -> None:
        single = tmp_path / "single"
        single.mkdir()
        (single / "statusd.yaml").write_text(CONFIG, encoding="utf-8")
        (single / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
        alone = Daemon(single / "statusd.yaml", single / "state")
        code = alone.cli("user", "add", "annexe-desk", "--sites", "annexe").stdout.strip().rsplit("/", 1)[1]
        db = desk_db.connect(single / "state" / "statusd.db")
        try:
            Accounts(db).enrol(code, PASSWORD)
        finally:
            db.close()
        alone.cli("export-state", str(tmp_path / "state.jsonl"))

        nodes = Nodes.make(tmp_path / "cluster", CONFIG, postgres_server.dsn(postgres_database, password=False),
                           DB_PASSWORD, {}, count=1)
        node = nodes.nodes[0].daemon
        assert "1 desk_users" in node.cli("import-state", str(tmp_path / "state.jsonl")).stdout
        try:
            nodes.start()
            status, answer = login(DeskServer(node, tmp_path / "cluster" / "n1"), "annexe-desk")
            assert status == 200 and answer["sites"] == ["annexe"], answer
        finally:
            nodes.stop()


class TestTrouble:
    """A database the desk cannot reach is a 503 or exit 2 with one sentence: no password, no traceback."""

    SECRET = "never-shown-secret-42"

    def unreachable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setenv("STATUSD_TEST_DESK_PASSWORD", self.SECRET)
        path = tmp_path / "statusd.yaml"
        path.write_text(CONFIG + f"store: postgresql://statusd@127.0.0.1:{_unused_port()}/statusd\n"
                        "store_password: {env: STATUSD_TEST_DESK_PASSWORD}\nstore_timeout: 1s\n", encoding="utf-8")
        return path

    async def test_a_login_is_a_503(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config = loading.load(self.unreachable(tmp_path, monkeypatch))
        api = DeskApi(lambda: config, tmp_path / "state" / "statusd.db")
        app = web.Application()
        api.routes(app)
        try:
            async with TestClient(TestServer(app)) as client:
                answer = await client.post("/api/v1/login", json={"account": "boss", "password": PASSWORD})
                body = await answer.text()
        finally:
            await api.db_call(api.db.close)
        assert answer.status == 503, body
        assert "the desk cannot reach its store just now" in body and self.SECRET not in body

    def test_the_user_command_says_why(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        daemon = Daemon(self.unreachable(tmp_path, monkeypatch), tmp_path / "state")
        result = daemon.cli("user", "list", check=False)
        assert result.returncode == 2, result.stderr
        # (psycopg's pool logs its failed connects first, as for every command on the store.)
        assert result.stderr.splitlines()[-1].startswith("statusd: the store cannot be used: ")
        assert "Traceback" not in result.stderr
        assert self.SECRET not in result.stderr + result.stdout
