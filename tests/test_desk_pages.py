"""The desk pages over plain HTTP: cookies, CSRF, sessions that expire or end, sites refused."""

from __future__ import annotations

import http.client
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest

from tests.desk.server import PASSWORD, DeskServer, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskServer]:
    server = start(tmp_path_factory.mktemp("pages"))
    try:
        yield server
    finally:
        server.daemon.kill()


class Browser:
    """A tiny client that keeps the desk's cookies (Secure ones too: this is loopback) and never follows."""

    def __init__(self, desk: DeskServer) -> None:
        self.port = desk.daemon.port
        self.cookies: dict[str, str] = {}

    def go(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        text = answer.read().decode()
        for raw in answer.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(raw)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        conn.close()
        return answer.status, text, {k.lower(): v for k, v in answer.headers.items()} | {
            "set-cookie": "\n".join(answer.headers.get_all("Set-Cookie") or [])}

    def login(self, account: str) -> None:
        status, page, _ = self.go("GET", "/desk/?lang=en")
        status, _, _ = self.go("POST", "/desk/login", {"csrf": csrf(page), "account": account,
                                                        "password": PASSWORD})
        assert status == 303, status


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


class TestLogin:
    """The login form is CSRF-bound; the session cookie is HttpOnly, Secure and SameSite=Strict."""

    def test_cookie_and_csp(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        status, page, headers = browser.go("GET", "/desk/?lang=en")
        assert status == 200 and "form-action 'self'" in headers["content-security-policy"]
        status, _, headers = browser.go("POST", "/desk/login", {"csrf": csrf(page), "account": "annexe-desk",
                                                                "password": PASSWORD})
        assert status == 303
        session = next(line for line in headers["set-cookie"].split("\n") if line.startswith("statusd_desk="))
        for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/desk/"):
            assert attribute in session
        status, page, _ = browser.go("GET", "/desk/?lang=en")
        assert 'id="site-annexe"' in page and 'id="site-main"' not in page

    @pytest.mark.parametrize("token", ["", "forged"])
    def test_login_without_the_form_s_token_is_refused(self, desk: DeskServer, token: str) -> None:
        browser = Browser(desk)
        browser.go("GET", "/desk/")
        status, _, _ = browser.go("POST", "/desk/login", {"csrf": token, "account": "boss", "password": PASSWORD})
        assert status == 403 and "statusd_desk" not in browser.cookies

    def test_a_wrong_password_says_so_on_the_page(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        _, page, _ = browser.go("GET", "/desk/?lang=en")
        status, page, _ = browser.go("POST", "/desk/login?lang=en", {"csrf": csrf(page), "account": "boss",
                                                                     "password": "not it at all"})
        assert status == 401 and "wrong account name or password" in page


class TestWithoutSso:
    """Without desk.sso the login page offers no single sign-on, and its routes do not exist."""

    def test_no_button_no_routes(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        _, page, _ = browser.go("GET", "/desk/?lang=en")
        assert "/desk/sso" not in page and "library account" not in page
        assert browser.go("GET", "/desk/sso")[0] == 404
        assert browser.go("GET", "/desk/sso/callback?code=x&state=y")[0] == 404
        assert browser.go("POST", "/api/v1/sso/device", {})[0] == 404


class TestSessions:
    """A session ends at log-out or after the idle time; its forms need its own CSRF token."""

    def test_logout_ends_the_session(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        browser.login("boss")
        cookie = browser.cookies["statusd_desk"]
        _, page, _ = browser.go("GET", "/desk/")
        assert browser.go("POST", "/desk/logout", {"csrf": csrf(page)})[0] == 303
        browser.cookies["statusd_desk"] = cookie  # a copy of the cookie kept elsewhere
        _, page, _ = browser.go("GET", "/desk/?lang=en")
        assert 'name="password"' in page and 'id="site-main"' not in page

    def test_an_idle_session_expires(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        browser.login("main-lead")
        db = sqlite3.connect(desk.daemon.state_dir / "statusd.db")
        try:
            with db:
                db.execute("UPDATE desk_tokens SET last_used = last_used - 13 * 3600 WHERE kind = 'session'"
                           " AND name = 'main-lead'")
        finally:
            db.close()
        _, page, _ = browser.go("GET", "/desk/?lang=en")
        assert 'name="password"' in page

    def test_another_session_s_token_does_not_do(self, desk: DeskServer) -> None:
        first, second = Browser(desk), Browser(desk)
        first.login("boss")
        second.login("boss")
        _, page, _ = first.go("GET", "/desk/")
        before = desk.state()
        form = {"csrf": csrf(page), "target": "annexe", "level": "closed", "message_fr": "x", "action": "send"}
        assert second.go("POST", "/desk/change", form)[0] == 403
        assert desk.state() == before

    def test_a_site_not_one_s_own_is_refused(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        browser.login("annexe-desk")
        _, page, _ = browser.go("GET", "/desk/?lang=en")
        before = desk.state()
        status, page, _ = browser.go("POST", "/desk/change?lang=en", {
            "csrf": csrf(page), "target": "main", "level": "closed", "message_fr": "x", "action": "send"})
        assert status == 403 and "annexe-desk may change annexe only, not main" in page
        assert desk.state() == before

    def test_a_refusal_is_the_command_s_sentence_and_keeps_the_form(self, desk: DeskServer) -> None:
        browser = Browser(desk)
        browser.login("boss")
        _, page, _ = browser.go("GET", "/desk/?lang=en")
        status, page, _ = browser.go("POST", "/desk/change?lang=en", {
            "csrf": csrf(page), "target": "main", "level": "closed", "message_fr": "", "action": "send"})
        assert status == 422 and "a closed status needs a message saying why" in page
        status, page, _ = browser.go("POST", "/desk/change?lang=en", {
            "csrf": csrf(page), "target": "main", "level": "closed", "message_fr": "Travaux",
            "until": "12:61", "action": "preview"})
        assert status == 422 and "is not a time of day" in page and ">Travaux</textarea>" in page
