"""Single sign-on through a real OpenID Connect provider (oidc-provider), the page and the remote command."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import os
import secrets
import socket
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from statusd.config.load import SsoConfig
from statusd.config.types import Secret
from statusd.desk.sso import UNKNOWN, OpenIdClient, SsoRefused
from tests.conftest import ALERTS, BASE, CONSOLE
from tests.daemon import Daemon
from tests.oidc.provider import Person, Provider, installed

pytestmark = pytest.mark.e2e

SECRET = "statusd-desk-test-secret-" + "x" * 16
OTHER_SECRET = "other-app-test-secret-" + "y" * 16
OTHER_BACK = "http://127.0.0.1:9/back"  # never contacted: the test stops at the redirect there
USERS = {
    "ada": {"email": "ada@library.test", "email_verified": True, "name": "Ada"},
    "grace-sub": {"email": "grace@elsewhere.test", "email_verified": True, "name": "Grace"},
    "mallory": {"email": "mallory@library.test", "email_verified": True, "name": "Mallory"},
    "eve": {"email": "boss@library.test", "email_verified": False, "name": "Eve"},
    "old": {"email": "old@library.test", "email_verified": True, "name": "Old"},
    "linus": {"email": "linus@library.test", "email_verified": True, "name": "Linus"},
}


@dataclass
class Sso:
    """The provider, the daemon configured for it, and how to read the daemon's store."""

    provider: Provider
    daemon: Daemon

    @property
    def url(self) -> str:
        return self.daemon.url

    def rows(self, query: str, *args: object) -> list[tuple[object, ...]]:
        db = sqlite3.connect(f"file:{self.daemon.state_dir / 'statusd.db'}?mode=ro", uri=True)
        try:
            return [tuple(r) for r in db.execute(query, args)]
        finally:
            db.close()

    def sessions(self, name: str) -> list[tuple[object, ...]]:
        return self.rows("SELECT kind, label FROM desk_tokens WHERE name = ? AND revoked_at IS NULL", name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(root: Path) -> Sso:
    # The redirect URI is the daemon's public_url, registered at the provider before the daemon starts:
    # so the port is chosen here (and chosen again if another process took it meanwhile).
    last: Exception | None = None
    for attempt in range(3):
        port = _free_port()
        back = f"http://127.0.0.1:{port}/desk/sso/callback"
        provider = Provider(clients=[
            {"client_id": "statusd-desk", "client_secret": SECRET, "redirect_uris": [back],
             "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
             "response_types": ["code"]},
            {"client_id": "other-app", "client_secret": OTHER_SECRET, "redirect_uris": [OTHER_BACK],
             "grant_types": ["authorization_code"], "response_types": ["code"]},
        ], users=USERS).start()
        where = root / str(attempt)
        where.mkdir(parents=True)
        config = where / "statusd.yaml"
        config.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h")
                          .replace("http://127.0.0.1:8080", f"http://127.0.0.1:{port}")
                          + f"desk:\n  sso:\n    issuer: {provider.issuer}\n    client_id: statusd-desk\n"
                            "    client_secret: {env: STATUSD_TEST_SSO_SECRET}\n", encoding="utf-8")
        (where / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
        daemon = Daemon(config, where / "state", env={"STATUSD_TEST_SSO_SECRET": SECRET})
        daemon.port = port
        try:
            daemon.start()
        except RuntimeError as err:
            provider.stop()
            last = err
            continue
        for args in (["annexe-desk", "--name", "Annexe desk", "--sites", "annexe", "--email", "ADA@library.test"],
                     ["main-lead", "--name", "Main lead", "--role", "lead", "--sites", "main",
                      "--sso-subject", "grace-sub"],
                     ["boss", "--name", "The boss", "--role", "admin", "--email", "boss@library.test"],
                     ["old-desk", "--name", "Old desk", "--sites", "main", "--sso-subject", "old"]):
            daemon.cli("user", "add", *args)
        daemon.cli("user", "disable", "old-desk")
        return Sso(provider, daemon)
    raise RuntimeError(f"the daemon did not start on a free port three times: {last}")


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    assert installed(), "the test OpenID provider is missing: run `make test-deps` (tests/oidc/install.sh)"
    started = _start(tmp_path_factory.mktemp("sso"))
    yield started
    started.daemon.terminate()
    started.provider.stop()


class TestLoginPage:
    """The login page offers single sign-on as a plain link, in each language, under the strict CSP."""

    async def test_button_in_three_languages(self, sso: Sso) -> None:
        async with Person() as person:
            for lang, text in (("en", "Sign in with your library account"),
                               ("fr", "Se connecter avec votre compte de la bibliothèque"),
                               ("sv", "Logga in med ditt bibliotekskonto")):
                async with person.http.get(f"{sso.url}/desk/?lang={lang}") as answer:
                    page = await answer.text()
                    assert f'href="/desk/sso?lang={lang}"' in page and text in page
                    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]

    async def test_start_cookie_is_lax_and_short(self, sso: Sso) -> None:
        async with Person() as person, person.http.get(f"{sso.url}/desk/sso", allow_redirects=False) as answer:
            assert answer.status == 303
            target = urlsplit(answer.headers["Location"])
            query = parse_qs(target.query)
            assert f"{target.scheme}://{target.netloc}" == sso.provider.issuer
            assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["statusd-desk"]
            assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
            cookie = answer.headers["Set-Cookie"]
            assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Secure" in cookie
            assert "Max-Age=600" in cookie and "Path=/desk/sso" in cookie


class TestSignIn:
    """A person signs in at the real provider; statusd's own list gives the role and sites."""

    async def test_by_verified_email(self, sso: Sso) -> None:
        async with Person(sso.url) as person:
            status, url, page = await person.sign_in(f"{sso.url}/desk/sso?lang=en", "ada")
            assert status == 200 and url.startswith(f"{sso.url}/desk/sso/callback"), page[page.find("<main"):][:800]
            assert 'http-equiv="refresh"' in page and "You are signed in." in page
            status, _, desk = await person.get(f"{sso.url}/desk/?lang=en")
        assert status == 200 and 'id="site-annexe"' in desk and 'id="site-main"' not in desk
        assert ("session", "desk page (SSO)") in sso.sessions("annexe-desk")
        # Matched on the e-mail once; from now on the provider's subject decides.
        assert sso.rows("SELECT sso_subject FROM desk_users WHERE name = 'annexe-desk'") == [("ada",)]

    async def test_by_subject_gets_statusds_role(self, sso: Sso) -> None:
        async with Person(sso.url) as person:
            status, _, _ = await person.sign_in(f"{sso.url}/desk/sso", "grace-sub")
            assert status == 200
            _, _, desk = await person.get(f"{sso.url}/desk/?lang=en")
        assert 'id="site-main"' in desk and 'id="site-annexe"' not in desk and "Main lead" in desk
        assert sso.rows("SELECT role, sites FROM desk_users WHERE name = 'main-lead'") == [("lead", '["main"]')]


class TestLinking:
    """`statusd user edit NAME --sso-subject SUB` links a person, who then signs in with statusd's role."""

    async def test_edit_then_sign_in(self, sso: Sso) -> None:
        sso.daemon.cli("user", "add", "annexe-two", "--name", "Annexe two", "--sites", "annexe")
        async with Person(sso.url) as person:
            status, _, _ = await person.sign_in(f"{sso.url}/desk/sso", "linus")
        assert status == 403
        edited = sso.daemon.cli("user", "edit", "annexe-two", "--sso-subject", "linus").stdout
        assert "Account annexe-two: desk for annexe" in edited and "single sign-on subject 'linus'" in edited
        listed = sso.daemon.cli("user", "list").stdout
        assert any(line.startswith("annexe-two") and "single sign-on" in line for line in listed.splitlines())
        async with Person(sso.url) as person:
            status, _, _ = await person.sign_in(f"{sso.url}/desk/sso", "linus")
            assert status == 200
            _, _, desk = await person.get(f"{sso.url}/desk/?lang=en")
        assert 'id="site-annexe"' in desk and "Annexe two" in desk
        clash = sso.daemon.cli("user", "edit", "boss", "--sso-subject", "linus", check=False)
        assert clash.returncode != 0 and "annexe-two already has this single sign-on subject" in clash.stderr


class TestRefusals:
    """Unknown, unverified, disabled, forged and misaddressed sign-ins never make a session."""

    async def _refused(self, sso: Sso, login: str) -> str:
        before = sso.rows("SELECT COUNT(*) FROM desk_tokens")
        async with Person(sso.url) as person:
            status, _, page = await person.sign_in(f"{sso.url}/desk/sso?lang=en", login)
            assert status == 403, page[:500]
            assert not [c for c in person.http.cookie_jar if c.key == "statusd_desk"]
        assert sso.rows("SELECT COUNT(*) FROM desk_tokens") == before
        return html.unescape(page)

    async def test_unknown_subject(self, sso: Sso) -> None:
        page = await self._refused(sso, "mallory")
        assert UNKNOWN.split(";")[0] in page and 'href="/desk/sso?lang=en"' in page

    async def test_unverified_email_does_not_match(self, sso: Sso) -> None:
        page = await self._refused(sso, "eve")
        assert UNKNOWN.split(";")[0] in page
        assert sso.rows("SELECT sso_subject FROM desk_users WHERE name = 'boss'") == [(None,)]

    async def test_disabled_account(self, sso: Sso) -> None:
        page = await self._refused(sso, "old")
        assert "the account old-desk is disabled" in page

    async def test_forged_state(self, sso: Sso) -> None:
        back = f"{sso.url}/desk/sso/callback"
        async with Person(sso.url) as person:
            status, url, _ = await person.sign_in(f"{sso.url}/desk/sso", "ada", stop_at=back)
            assert status in (302, 303) and url.startswith(back)
            real = parse_qs(urlsplit(url).query)
            forged = f"{back}?{urlencode({'code': real['code'][0], 'state': secrets.token_urlsafe(32)})}"
            status, _, page = await person.get(forged)
            page = html.unescape(page)
            assert status == 403 and "does not belong to the sign-in this browser started" in page
            # The attempt is used up: the genuine answer, replayed after the forged one, is refused too.
            status, _, page = await person.get(url)
            assert status == 403 and "already used" in page
            assert not [c for c in person.http.cookie_jar if c.key == "statusd_desk"]

    async def test_provider_refusal_is_shown_escaped(self, sso: Sso) -> None:
        async with Person(sso.url) as person:
            async with person.http.get(f"{sso.url}/desk/sso", allow_redirects=False) as answer:
                state = parse_qs(urlsplit(answer.headers["Location"]).query)["state"][0]
            hostile = "<script>alert(1)</script>" + "x" * 400
            status, _, page = await person.get(f"{sso.url}/desk/sso/callback?" + urlencode(
                {"state": state, "error": "access_denied", "error_description": hostile}))
        assert status == 403 and "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
        assert "x" * 250 not in page  # the provider's text is cut short

    async def test_id_token_for_another_audience(self, sso: Sso) -> None:
        id_token, nonce = await _other_apps_id_token(sso)
        secret = Secret("env", "STATUSD_TEST_SSO_SECRET")
        ours = OpenIdClient(SsoConfig(sso.provider.issuer, "statusd-desk", secret), f"{sso.url}/desk/sso/callback")
        with pytest.raises(SsoRefused, match="not for this statusd"):
            await ours.verify(id_token, nonce)
        # The same token, a genuine one from the provider, passes for the client it was issued to.
        theirs = OpenIdClient(SsoConfig(sso.provider.issuer, "other-app", secret), OTHER_BACK)
        assert (await theirs.verify(id_token, nonce))["aud"] == "other-app"
        with pytest.raises(SsoRefused):
            await theirs.verify(id_token, "another nonce")


async def _other_apps_id_token(sso: Sso) -> tuple[str, str]:
    """An ID token the real provider issues to another application (its own code flow with PKCE)."""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    issuer = sso.provider.issuer
    async with Person() as person:
        async with person.http.get(f"{issuer}/.well-known/openid-configuration") as answer:
            meta = await answer.json()
        start = meta["authorization_endpoint"] + "?" + urlencode({
            "response_type": "code", "client_id": "other-app", "redirect_uri": OTHER_BACK, "scope": "openid email",
            "state": "s" * 16, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
        _, url, _ = await person.sign_in(start, "ada", stop_at=OTHER_BACK)
        code = parse_qs(urlsplit(url).query)["code"][0]
        async with person.http.post(meta["token_endpoint"], headers={"Authorization": _basic("other-app", OTHER_SECRET)},
                                    data={"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": OTHER_BACK, "code_verifier": verifier}) as answer:
            body = await answer.json()
    return str(body["id_token"]), nonce


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestDeviceFlow:
    """`statusd login URL --sso` prints the provider's address and code, then holds a personal token."""

    async def test_remote_login(self, sso: Sso, tmp_path: Path) -> None:
        env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config")}
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "statusd", "login", sso.url, "--sso", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert command.stdout is not None and command.stderr is not None
            first = (await asyncio.wait_for(command.stdout.readline(), 30)).decode()
            assert first.startswith("To sign in, open ") and " and enter the code " in first, first
            second = (await command.stdout.readline()).decode().strip()
            complete = second.removeprefix("(or open ").removesuffix(" directly)")
            async with Person() as person:
                status, url, page = await person.get(complete)
                # The provider's own pages, as a browser without JavaScript sees them: "continue",
                # "confirm this code", its login form, its consent form, then a page without a form.
                for _ in range(6):
                    if "<form" not in page:
                        break
                    fields = {"login": "grace-sub", "password": "any"} if 'value="login"' in page else None
                    status, url, page = await person.submit(url, page, fields)
                assert status == 200, page[:500]
            out_bytes, err_bytes = await asyncio.wait_for(command.communicate(), 60)
            out, err = out_bytes.decode(), err_bytes.decode()
        finally:
            if command.returncode is None:
                command.kill()
                await command.wait()
        assert command.returncode == 0, err
        assert f"Logged in to {sso.url} as Main lead (main-lead), lead" in out
        stored = tmp_path / ".config" / "statusd" / "tokens.json"
        assert oct(stored.stat().st_mode & 0o777) == "0o600"
        token = next(iter(json.loads(stored.read_text()).values()))
        assert ("token", "statusd login --sso from " + socket.gethostname()) in sso.sessions("main-lead")
        async with Person() as person, person.http.get(f"{sso.url}/api/v1/status",
                                                        headers={"Authorization": f"Bearer {token}"}) as answer:
            assert answer.status == 200


class TestProviderTrouble:
    """A provider that is down, or whose discovery document names another issuer, is refused in one sentence."""

    async def test_unreachable(self) -> None:
        port = _free_port()
        client = OpenIdClient(SsoConfig(f"http://127.0.0.1:{port}", "statusd-desk", Secret("env", "UNSET_X")),
                              "http://127.0.0.1:1/desk/sso/callback")
        with pytest.raises(SsoRefused, match=f"cannot reach the identity provider at http://127.0.0.1:{port}/"):
            await client.start()

    async def test_discovery_naming_another_issuer(self) -> None:
        from aiohttp import web

        async def discovery(request: web.Request) -> web.Response:
            return web.json_response({"issuer": "https://someone-else.test", "authorization_endpoint": "x",
                                      "token_endpoint": "x", "jwks_uri": "x"})

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            client = OpenIdClient(SsoConfig(f"http://127.0.0.1:{port}", "statusd-desk", Secret("env", "UNSET_X")),
                                  "http://127.0.0.1:1/desk/sso/callback")
            with pytest.raises(SsoRefused, match="names itself 'https://someone-else.test', not the configured"):
                await client.start()
        finally:
            await runner.cleanup()

    async def test_secret_not_set(self, sso: Sso) -> None:
        client = OpenIdClient(SsoConfig(sso.provider.issuer, "statusd-desk", Secret("env", "STATUSD_TEST_UNSET")),
                              f"{sso.url}/desk/sso/callback")
        with pytest.raises(SsoRefused, match=r"its client secret \(environment variable STATUSD_TEST_UNSET\) is not"):
            await client.device_start()
