"""The desk API: tokens, roles and sites checked on every request; the local command's wording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.errors import UserError
from statusd.sources.status.entry import build
from tests.desk.server import PASSWORD, DeskServer, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskServer]:
    server = start(tmp_path_factory.mktemp("desk"))
    try:
        yield server
    finally:
        server.daemon.kill()


class TestTokens:
    """Without a valid personal token the API answers 401 in one sentence."""

    @pytest.mark.parametrize("header", [None, "Bearer", "Basic Ym9zczpwYXNz", "Bearer sdt_00000000_nothing"])
    def test_no_valid_token_no_status(self, desk: DeskServer, header: str | None) -> None:
        status, answer = desk.call("GET", "/api/v1/status", headers={"Authorization": header} if header else {})
        assert status == 401
        assert answer["error"].count(". ") == 0 and "statusd login" in answer["error"]

    def test_a_token_reads_the_status_as_statusd_show_prints_it(self, desk: DeskServer) -> None:
        status, answer = desk.call("GET", "/api/v1/status", token=desk.tokens["annexe-desk"])
        assert status == 200 and answer["exit"] == 0
        assert answer["stdout"] == desk.daemon.cli("show").stdout


class TestSitesAndRoles:
    """Each change is checked against the person's sites and role; a refusal is a 403 sentence."""

    def test_an_annexe_desk_may_not_change_main(self, desk: DeskServer) -> None:
        before = desk.state()
        status, answer = desk.call("PUT", "/api/v1/status/main", {"level": "closed", "messages": ["fr:Feu"]},
                                   token=desk.tokens["annexe-desk"])
        assert status == 403
        assert answer["error"] == ("annexe-desk may change annexe only, not main; ask a lead or the person "
                                   "who runs statusd")
        assert desk.state() == before

    def test_nor_a_service_of_main_nor_preview_it(self, desk: DeskServer) -> None:
        token = desk.tokens["annexe-desk"]
        assert desk.call("PUT", "/api/v1/status/main/wifi", {"level": "limited"}, token=token)[0] == 403
        assert desk.call("POST", "/api/v1/preview", {"target": "main", "level": "limited"}, token=token)[0] == 403

    def test_a_desk_flips_its_site_and_the_file_names_the_person(self, desk: DeskServer) -> None:
        status, answer = desk.call("PUT", "/api/v1/status/annexe", {"level": "limited", "message": {"sv": "Kö"}},
                                   token=desk.tokens["annexe-desk"])
        assert status == 200, answer
        assert answer["stdout"].startswith("annexe: limited — written to ")
        assert "by: Annexe desk (annexe-desk)" in (desk.root / "status.yaml").read_text()

    def test_the_refusal_is_the_local_command_s_sentence(self, desk: DeskServer) -> None:
        from statusd.loading import load

        status, answer = desk.call("PUT", "/api/v1/status/annexe", {"level": "closd"},
                                   token=desk.tokens["annexe-desk"])
        with pytest.raises(UserError) as local:
            build(load(desk.daemon.config), "annexe", "closd", [], None, None, "x", datetime.now(UTC))
        assert status == 422 and answer["exit"] == 2
        assert answer["error"] == str(local.value)

    def test_a_desk_reads_the_history_of_its_own_sites_only(self, desk: DeskServer) -> None:
        status, answer = desk.call("PUT", "/api/v1/status/main", {"level": "limited", "messages": ["fr:Bruit"]},
                                   token=desk.tokens["main-lead"])
        assert status == 200, answer
        _wait_update(desk, "main")
        annexe = desk.call("GET", "/api/v1/history?n=20", token=desk.tokens["annexe-desk"])[1]["stdout"]
        main = desk.call("GET", "/api/v1/history?n=20", token=desk.tokens["main-desk"])[1]["stdout"]
        assert "  main → limited" in main and "  main → " not in annexe and "Main lead" not in annexe

    def test_a_desk_takes_back_only_its_own_updates_and_a_lead_any(self, desk: DeskServer) -> None:
        lead, main_desk = desk.tokens["main-lead"], desk.tokens["main-desk"]
        status, answer = desk.call("PUT", "/api/v1/status/main/printing",
                                   {"level": "closed", "messages": ["fr:Panne"]}, token=lead)
        assert status == 200, answer
        update = _wait_update(desk, "main/printing")
        status, answer = desk.call("POST", f"/api/v1/retract/{update}", {}, token=main_desk)
        assert status == 403 and "made by Main lead (main-lead)" in answer["error"]
        status, answer = desk.call("POST", f"/api/v1/retract/{update}", {}, token=desk.tokens["annexe-desk"])
        assert status == 403 and "not main" in answer["error"]
        status, answer = desk.call("POST", f"/api/v1/retract/{update}", {}, token=lead)
        assert status == 200 and "Took back main/printing" in answer["stdout"], answer
        history = desk.call("GET", "/api/v1/history?n=5", token=main_desk)[1]["stdout"]
        assert "by Main lead (main-lead)" in history and "taken back by Main lead (main-lead)" in history


class TestLoginThrottle:
    """Twenty wrong passwords through the API lock the account and say when to try again."""

    def test_twenty_wrong_passwords(self, desk: DeskServer) -> None:
        answers = [desk.call("POST", "/api/v1/login", {"account": "main-desk", "password": f"wrong {i}"})
                   for i in range(20)]
        assert all(status == 401 for status, _ in answers)
        assert answers[-1][1]["error"].startswith("too many failed logins for the account main-desk; try again after")
        status, answer = desk.call("POST", "/api/v1/login", {"account": "main-desk", "password": PASSWORD})
        assert status == 401 and "too many failed logins" in answer["error"]
        desk.daemon.cli("user", "reset", "main-desk")  # how a locked-out person gets back in


_PATHS = st.sampled_from([
    "/api/v1/status", "/api/v1/status/main", "/api/v1/status/annexe/wifi", "/api/v1/preview", "/api/v1/undo",
    "/api/v1/retract/a", "/api/v1/history", "/api/v1/logout", "/api/v1/login", "/api/v1/enrol",
    "/api/v1/status/%2e%2e", "/api/v1/users",
    "/desk/", "/desk/login", "/desk/logout", "/desk/change", "/desk/undo", "/desk/state.json", "/desk/enrol/x",
])
_HEADERS = st.one_of(
    st.just({}),
    st.builds(lambda t: {"Authorization": f"Bearer {t}"}, st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                               max_size=60)),
    st.builds(lambda t: {"Authorization": t}, st.sampled_from(["Bearer", "bearer  ", "Token x", "Basic eA=="])),
    st.builds(lambda t: {"Cookie": f"statusd_desk={t}; statusd_desk_login={t}"},
              st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=40)),
)
_BODIES = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.fixed_dictionaries({"level": st.sampled_from(["closed", "open", "emergency"]),
                           "messages": st.lists(st.text(max_size=30), max_size=3),
                           "target": st.sampled_from(["main", "annexe", "main/wifi"]),
                           "account": st.sampled_from(["boss", "annexe-desk", "nobody"]),
                           "password": st.text(max_size=30), "code": st.text(max_size=30)}).map(
        lambda d: json.dumps(d).encode()),
    st.builds(lambda target, csrf: f"target={target}&level=closed&message_fr=x&action=send&update=a&csrf={csrf}"
              .encode(), st.sampled_from(["main", "annexe"]), st.text("abc", max_size=8)),
)


class TestNoTokenNoChange:
    """No request without a valid token or session changes any state (hypothesis)."""

    @settings(max_examples=150)
    @given(method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH"]), path=_PATHS, headers=_HEADERS,
           body=_BODIES)
    def test_hostile_requests(self, desk: DeskServer, method: str, path: str, headers: dict[str, str],
                              body: bytes | None) -> None:
        before = desk.state()
        status, _ = desk.call(method, path, headers=headers, raw=body)
        assert status < 500 or status == 503
        assert desk.state() == before


def _wait_update(desk: DeskServer, target: str) -> str:
    import re
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        history = desk.daemon.cli("history", "-n", "3").stdout
        for line in history.splitlines():
            if f"  {target} → " in line and "taken back" not in line:
                match = re.search(r"\[([0-9a-f]+)\]$", line)
                if match:
                    return match.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no update for {target}")


class TestDescribed:
    """Every desk route is in the OpenAPI description the daemon serves, with its methods."""

    def test_openapi_lists_the_desk_routes(self, desk: DeskServer) -> None:
        from aiohttp import web

        from statusd import loading
        from statusd.desk.api import DeskApi

        app = web.Application()
        config = loading.load(desk.root / "statusd.yaml")
        api = DeskApi(lambda: config, desk.root / "scratch.db")
        api.routes(app)
        api.db.close()
        routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
                  if r.resource is not None and r.method != "HEAD"}
        status, spec = desk.call("GET", "/api/openapi.json")
        assert status == 200
        described = {(method, path) for path, ops in spec["paths"].items() for method in ops}
        assert routes <= described
        public = ("/api/v1/login", "/api/v1/enrol")
        assert all(spec["paths"][p][m].get("security") for m, p in routes if p not in public)
