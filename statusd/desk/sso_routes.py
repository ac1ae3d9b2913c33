"""The single sign-on routes: /desk/sso for the page, /api/v1/sso/device for `statusd login --sso`.

The page's attempt (state, nonce, PKCE verifier) stays in this process, found
again through a short-lived pre-session cookie: SameSite=Lax, because the
provider's redirect back is a cross-site navigation that a Strict cookie would
not follow. Success makes the same desk session the password login makes.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

import structlog
from aiohttp import web

from statusd.config.load import SsoConfig
from statusd.desk.pages import COOKIE, HEADERS, DeskPages
from statusd.desk.sso import OpenIdClient, Pending, SsoRefused, Started, match
from statusd.desk.tokens import SESSION, TOKEN

log = structlog.get_logger()

ATTEMPT = "statusd_desk_sso"
ATTEMPT_FOR = 600.0  # seconds a person has at the provider before the attempt is forgotten
MAX_ATTEMPTS = 1000  # attempts never finished must not grow the table without bound
# Starting costs a request to the provider and a table entry: one address may start this many per window.
STARTS_PER_ADDRESS, START_WINDOW = 20, 600.0
TOO_MANY = "too many sign-ins were started from this address in the last 10 minutes; wait a few minutes"
EXPIRED = ("this sign-in was started too long ago, in another browser, or already used; "
           "press the button to sign in again")


class SsoRoutes:
    """The handlers, on top of the desk pages (sessions, rendering) and API (accounts, tokens)."""

    def __init__(self, pages: DeskPages) -> None:
        self.pages = pages
        self.api = pages.api
        self.attempts: dict[str, tuple[Started, str]] = {}  # cookie → (attempt, the page's language)
        self.devices: dict[str, tuple[str, float, str]] = {}  # handle → (device_code, expires, label)
        self._client: OpenIdClient | None = None
        self._starts: dict[str, list[float]] = {}  # address → when it started sign-ins, in the window

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/desk/sso", self.start)
        r.add_get("/desk/sso/callback", self.callback)
        r.add_post("/api/v1/sso/device", self.device_start)
        r.add_post("/api/v1/sso/device/token", self.device_token)

    def client(self) -> OpenIdClient:
        """The provider's client for the config in force (a reload may change or remove it)."""
        config: SsoConfig | None = self.api.config().desk.sso
        if config is None:
            raise web.HTTPNotFound(text="single sign-on is not set up on this statusd (desk.sso)\n")
        redirect = f"{self.api.config().public_url}/desk/sso/callback"
        if self._client is None or self._client.config != config or self._client.redirect_uri != redirect:
            self._client = OpenIdClient(config, redirect)
        return self._client

    def _too_many(self, request: web.Request) -> bool:
        """Whether this address started too many sign-ins lately (else this start is counted)."""
        now, address = time.monotonic(), request.remote or "unknown"
        if len(self._starts) > MAX_ATTEMPTS:
            self._starts = {a: t for a, t in self._starts.items() if t and now - t[-1] < START_WINDOW}
        recent = [t for t in self._starts.get(address, []) if now - t < START_WINDOW]
        if len(recent) >= STARTS_PER_ADDRESS:
            log.warning("desk_sso_throttled", address=address)
            return True
        self._starts[address] = [*recent, now]
        return False

    # -- the page -----------------------------------------------------------

    async def start(self, request: web.Request) -> web.StreamResponse:
        client = self.client()
        if self._too_many(request):
            return self.pages.login_page(request, error=TOO_MANY, status=429)
        try:
            started = await client.start()
        except SsoRefused as err:
            return self.pages.login_page(request, error=str(err), status=502)
        self._forget_old()
        key = secrets.token_urlsafe(24)
        self.attempts[key] = (started, self.pages.lang(request))
        response = web.HTTPSeeOther(started.url, headers=HEADERS)
        response.set_cookie(ATTEMPT, key, httponly=True, secure=True, samesite="Lax", path="/desk/sso",
                            max_age=int(ATTEMPT_FOR))
        log.info("desk_sso_started")
        return response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        client = self.client()
        started, lang = self.attempts.pop(request.cookies.get(ATTEMPT, ""), (None, None))
        try:
            if started is None or time.monotonic() - started.at > ATTEMPT_FOR:
                raise SsoRefused(EXPIRED)
            if not hmac.compare_digest(request.query.get("state", "").encode(), started.state.encode()):
                log.warning("desk_sso_state_refused")
                raise SsoRefused("this sign-in answer does not belong to the sign-in this browser started; "
                                 "press the button to sign in again")
            if "error" in request.query:
                raise SsoRefused("the library's identity provider did not sign you in ("
                                 f"{request.query.get('error_description') or request.query['error']}"[:200] + ")")
            claims = await client.finish(started, request.query.get("code", ""))
            person = await self.api.db_call(lambda: match(self.api.accounts, claims))
        except SsoRefused as err:
            response = self.pages.login_page(request, error=str(err), status=403, lang=lang)
            response.del_cookie(ATTEMPT, path="/desk/sso")
            return response
        token, _ = await self.api.db_call(lambda: self.api.tokens.issue(person.name, SESSION, "desk page (SSO)"))
        # A page, not a redirect: the way here began on the provider's site, and a browser does not send
        # a SameSite=Strict cookie along a redirect chain that started cross-site; this page's own
        # refresh is a same-site navigation, so the session cookie goes along.
        home = "/desk/" + (f"?lang={lang}" if lang else "")
        response = self.pages.render(request, "sso_done.html", lang=lang, home=home)
        response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="Strict", path="/desk/",
                            max_age=int(self.api.config().desk.session_idle))
        response.del_cookie(ATTEMPT, path="/desk/sso")
        return response

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key in [k for k, v in self.attempts.items() if now - v[0].at > ATTEMPT_FOR]:
            del self.attempts[key]
        while len(self.attempts) >= MAX_ATTEMPTS:
            self.attempts.pop(next(iter(self.attempts)))

    # -- the remote command: device flow run by the daemon -------------------

    async def device_start(self, request: web.Request) -> web.StreamResponse:
        """Start a device sign-in; the daemon keeps the device code and the client secret."""
        client = self.client()
        body = await _body(request)
        if self._too_many(request):
            return _problem(429, TOO_MANY)
        try:
            answer = await client.device_start()
        except SsoRefused as err:
            return _problem(502, str(err))
        now = time.monotonic()
        for key in [k for k, v in self.devices.items() if v[1] < now]:
            del self.devices[key]
        while len(self.devices) >= MAX_ATTEMPTS:
            self.devices.pop(next(iter(self.devices)))
        handle = secrets.token_urlsafe(24)
        expires = float(answer.get("expires_in") or 600)
        label = str(body.get("label") or "statusd login --sso")[:100]
        self.devices[handle] = (str(answer["device_code"]), now + expires, label)
        return web.json_response({
            "handle": handle, "user_code": answer.get("user_code"), "verification_uri": answer.get("verification_uri"),
            "verification_uri_complete": answer.get("verification_uri_complete"),
            "interval": int(answer.get("interval") or 5), "expires_in": int(expires)},
            headers={"Cache-Control": "no-store"})

    async def device_token(self, request: web.Request) -> web.StreamResponse:
        """202 while the person has not approved yet; then a personal token, as /api/v1/login gives."""
        client = self.client()
        handle = str((await _body(request)).get("handle") or "")
        device = self.devices.get(handle)
        if device is None or device[1] < time.monotonic():
            self.devices.pop(handle, None)
            return _problem(403, "this device sign-in is unknown or expired; run `statusd login URL --sso` again")
        try:
            claims = await client.device_poll(device[0])
            person = await self.api.db_call(lambda: match(self.api.accounts, claims))
        except Pending as wait:
            return web.json_response({"pending": True, "slow_down": wait.slow_down}, status=202)
        except SsoRefused as err:
            self.devices.pop(handle, None)
            return _problem(403, str(err))
        self.devices.pop(handle, None)
        token, _ = await self.api.db_call(lambda: self.api.tokens.issue(person.name, TOKEN, device[2]))
        log.info("desk_token_issued", account=person.name)
        return web.json_response({"token": token, "account": person.name, "display": person.display,
                                  "role": person.role, "sites": list(person.sites)},
                                 headers={"Cache-Control": "no-store"})


async def _body(request: web.Request) -> dict[str, Any]:
    if (request.content_length or 0) > 4096:
        raise web.HTTPRequestEntityTooLarge(max_size=4096, actual_size=request.content_length or 0)
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(status: int, sentence: str) -> web.Response:
    return web.json_response({"error": sentence}, status=status, headers={"Cache-Control": "no-store"})
