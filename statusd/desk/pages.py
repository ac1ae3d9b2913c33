"""The desk pages under /desk/: log in, one card per permitted site, preview, send, undo.

Server-rendered plain forms that work without JavaScript (desk.js only keeps
the delivery states live and fills presets in). The session cookie is
HttpOnly, Secure and SameSite=Strict; every form carries the session's CSRF
token (the login form a cookie-bound one); the pages send the strict CSP.
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from statusd.desk import presets as desk_presets
from statusd.desk.access import Forbidden, may_change, may_take_back
from statusd.desk.api import DeskApi
from statusd.desk.login import LoginRefused, authenticate
from statusd.desk.tokens import SESSION, Grant, Refused
from statusd.desk.words import word
from statusd.errors import UserError
from statusd.model import LEVELS, Target
from statusd.web.words import pick

log = structlog.get_logger()

HERE = Path(__file__).resolve().parent
COOKIE, PRE = "statusd_desk", "statusd_desk_login"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "X-Frame-Options": "DENY"}
STATIC = {"desk.css": "text/css", "desk.js": "text/javascript"}
MAX_FORM = 64 * 1024
MAX_FLASH = 1000  # sessions that never come back must not grow the notes without bound


class DeskPages:
    """The handlers of /desk/, on top of the desk API's accounts, sessions and commands."""

    def __init__(self, api: DeskApi) -> None:
        self.api = api
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
        self.flash: dict[str, str] = {}  # session id → the last command's output, shown once

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/desk", self.to_desk)
        r.add_get("/desk/", self.home)
        r.add_post("/desk/login", self.login)
        r.add_post("/desk/logout", self.logout)
        r.add_post("/desk/change", self.change)
        r.add_post("/desk/undo", self.undo)
        r.add_get("/desk/state.json", self.state)
        r.add_get("/desk/enrol/{code}", self.enrol_form)
        r.add_post("/desk/enrol/{code}", self.enrol)
        r.add_get("/desk/static/{name}", self.static)

    # -- sessions ------------------------------------------------------------

    async def session(self, request: web.Request) -> Grant | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            return await self.api.check(token, SESSION)
        except Refused:
            return None

    async def form(self, request: web.Request, grant: Grant | None) -> dict[str, str]:
        """The posted fields, once the CSRF token matches the session's (or the login cookie's)."""
        if (request.content_length or 0) > MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=request.content_length or 0)
        data = await request.post()
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        expected = grant.csrf if grant else request.cookies.get(PRE, "")
        if not expected or not hmac.compare_digest(fields.get("csrf", "").encode(), expected.encode()):
            log.warning("desk_csrf_refused", path=request.path)
            raise web.HTTPForbidden(text="This form is out of date or was not sent by the desk page; "
                                         "reload the page and try again.\n", headers=HEADERS)
        return fields

    def note(self, grant: Grant, text: str) -> None:
        """What the next page view of this session shows once (the command's own output)."""
        self.flash.pop(grant.token_id, None)
        while len(self.flash) >= MAX_FLASH:
            self.flash.pop(next(iter(self.flash)))
        self.flash[grant.token_id] = text

    def lang(self, request: web.Request) -> str:
        return pick(request.query.get("lang"), request.headers.get("Accept-Language"), self.api.config().languages)

    def render(self, request: web.Request, name: str, status: int = 200, lang: str | None = None,
               **context: Any) -> web.Response:
        lang = lang if lang in self.api.config().languages else self.lang(request)
        languages = self.api.config().languages
        html = self.env.get_template(name).render(lang=lang, w=lambda k: word(k, lang), languages=languages,
                                                  **context)
        return web.Response(text=html, content_type="text/html", status=status,
                            headers={**HEADERS, "Content-Language": lang})

    # -- pages ---------------------------------------------------------------

    async def to_desk(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("/desk/")

    async def home(self, request: web.Request) -> web.StreamResponse:
        grant = await self.session(request)
        if grant is None:
            return self.login_page(request)
        message = self.flash.pop(grant.token_id, None)
        return await self.cards(request, grant, flash=message)

    def login_page(self, request: web.Request, error: str | None = None, note: str | None = None,
                   status: int = 200, lang: str | None = None) -> web.Response:
        pre = secrets.token_urlsafe(24)
        response = self.render(request, "login.html", status=status, lang=lang, csrf=pre, error=error, note=note,
                               sso=self.api.config().desk.sso is not None)
        response.set_cookie(PRE, pre, httponly=True, secure=True, samesite="Strict", path="/desk/")
        return response

    async def cards(self, request: web.Request, grant: Grant, status: int = 200, **extra: Any) -> web.Response:
        from statusd.desk.view import cards

        view = await self.api.db_call(lambda: cards(self.api.config(), self.api.store, grant.person,
                                                    self.lang(request)))
        return self.render(request, "desk.html", status=status, person=grant.person, csrf=grant.csrf,
                           cards=view, levels=LEVELS, shown=time.time_ns() // 1_000_000,
                           presets=desk_presets.load(self.api.config().alerts_dir), **extra)

    async def login(self, request: web.Request) -> web.StreamResponse:
        fields = await self.form(request, None)
        address = request.remote or "unknown"
        try:
            person = await self.api.db_call(lambda: authenticate(self.api.desk, fields.get("account", ""),
                                                                 fields.get("password", ""), address))
        except LoginRefused as err:
            return self.login_page(request, error=str(err), status=401)
        token, _ = await self.api.db_call(lambda: self.api.tokens.issue(person.name, SESSION, "desk page"))
        response = web.HTTPSeeOther(_home(request))
        response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="Strict", path="/desk/",
                            max_age=int(self.api.config().desk.session_idle))
        response.del_cookie(PRE, path="/desk/")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        grant = await self.need(request)
        await self.form(request, grant)
        token = request.cookies[COOKIE]
        await self.api.db_call(lambda: self.api.tokens.revoke_token(token))
        response = web.HTTPSeeOther(_home(request))
        response.del_cookie(COOKIE, path="/desk/")
        return response

    async def need(self, request: web.Request) -> Grant:
        grant = await self.session(request)
        if grant is None:
            raise web.HTTPSeeOther(_home(request))
        return grant

    async def change(self, request: web.Request) -> web.StreamResponse:
        grant = await self.need(request)
        fields = await self.form(request, grant)
        target = fields.get("target", "")
        site = Target.parse(target).site
        try:
            may_change(grant.person, site)
        except Forbidden as err:
            return await self.cards(request, grant, status=403, flash=str(err))
        action = fields.get("action", "preview")
        if action == "preset":
            return await self.cards(request, grant, form=_preset_form(self.api, fields), focus=site)
        messages = [f"{lang}:{fields[f'message_{lang}'].strip()}" for lang in self.api.config().languages
                    if fields.get(f"message_{lang}", "").strip()]
        change = {"target": target, "level": fields.get("level", ""), "message": messages,
                  "starts": fields.get("from", "").strip() or None, "until": fields.get("until", "").strip() or None}
        if action == "send":
            outcome = await self.api.run(grant, "set", **change)
            if outcome.exit == 0:
                self.note(grant, outcome.stdout.strip())
                raise web.HTTPSeeOther(_home(request) + f"#site-{site}")
            return await self.cards(request, grant, status=422, error=outcome.error, form=fields, focus=site)
        return await self.preview(request, grant, fields, change, site)

    async def preview(self, request: web.Request, grant: Grant, fields: dict[str, str], change: dict[str, Any],
                      site: str) -> web.Response:
        from statusd.desk.view import preview_texts

        try:
            texts = await self.api.db_call(lambda: preview_texts(self.api.config(), self.api.store,
                                                                 grant.person.by, change))
        except UserError as err:
            return await self.cards(request, grant, status=422, error=str(err), form=fields, focus=site)
        return await self.cards(request, grant, form=fields, focus=site, preview=texts)

    async def undo(self, request: web.Request) -> web.StreamResponse:
        grant = await self.need(request)
        fields = await self.form(request, grant)
        update = fields.get("update", "")
        event = await self.api.db_call(lambda: self.api._event(update)) if update else None
        if event is None:
            return await self.cards(request, grant, status=422, flash="there is no such update to take back")
        try:
            may_take_back(grant.person, event)
        except Forbidden as err:
            return await self.cards(request, grant, status=403, flash=str(err))
        outcome = await self.api.run(grant, "retract", update=event.id)
        self.note(grant, outcome.stdout.strip() or outcome.error)
        raise web.HTTPSeeOther(_home(request) + f"#site-{event.target.site}")

    async def state(self, request: web.Request) -> web.StreamResponse:
        from statusd.desk.view import cards

        grant = await self.session(request)
        if grant is None:
            return web.json_response({"error": "log in again"}, status=401, headers=HEADERS)
        lang = self.lang(request)
        view = await self.api.db_call(lambda: cards(self.api.config(), self.api.store, grant.person, lang))
        states = {str(d["id"]): {"state": d["state"], "label": word(d["state"], lang) if d["state"] in
                                 ("pending", "sending", "sent", "failed", "cancelled", "superseded") else d["state"],
                                 "url": d["url"]}
                  for card in view for d in (card["last"]["deliveries"] if card["last"] else [])}
        sites = {card["id"]: card["last"]["id"] if card["last"] else "" for card in view}
        return web.json_response({"sites": sites, "deliveries": states}, headers=HEADERS)

    async def enrol_form(self, request: web.Request) -> web.StreamResponse:
        pre = secrets.token_urlsafe(24)
        response = self.render(request, "enrol.html", csrf=pre, code=request.match_info["code"])
        response.set_cookie(PRE, pre, httponly=True, secure=True, samesite="Strict", path="/desk/")
        return response

    async def enrol(self, request: web.Request) -> web.StreamResponse:
        fields = await self.form(request, None)
        code = request.match_info["code"]
        try:
            await self.api.db_call(lambda: self.api.accounts.enrol(code, fields.get("password", "")))
        except UserError as err:
            pre = secrets.token_urlsafe(24)
            response = self.render(request, "enrol.html", status=422, csrf=pre, code=code, error=str(err))
            response.set_cookie(PRE, pre, httponly=True, secure=True, samesite="Strict", path="/desk/")
            return response
        return self.login_page(request, note=word("enrolled", self.lang(request)))

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=(HERE / "static" / name).read_bytes(), content_type=STATIC[name],
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def _home(request: web.Request) -> str:
    lang = request.query.get("lang")
    return "/desk/" + (f"?lang={lang}" if lang and lang.isalpha() and len(lang) <= 3 else "")


def _preset_form(api: DeskApi, fields: dict[str, str]) -> dict[str, str]:
    """The card's fields with the chosen preset's level and messages filled in."""
    preset = desk_presets.load(api.config().alerts_dir).get(fields.get("preset", ""))
    if preset is None:
        return fields
    filled = {**fields, "level": preset.level}
    for lang in api.config().languages:
        filled[f"message_{lang}"] = preset.message.get(lang, "")
    return filled
