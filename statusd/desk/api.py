"""The desk API under /api/v1: one interface for the remote command and the desk page.

Every route but login and enrolment needs a personal token (or a page
session); each change is checked against the person's role and sites. The
commands themselves run exactly as on the server (capture.run), so the
remote command's output, refusals and exit codes are the local ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from statusd.config.load import Config
from statusd.desk import capture
from statusd.desk import db as desk_db
from statusd.desk.access import Forbidden, may_change, may_take_back
from statusd.desk.accounts import Accounts, Person
from statusd.desk.limits import Limits
from statusd.desk.login import Desk, LoginRefused, authenticate
from statusd.desk.tokens import TOKEN, Grant, Refused, Tokens
from statusd.errors import StoreError, UserError
from statusd.events import Event
from statusd.model import Target
from statusd.outbox.opening import open_reader
from statusd.outbox.records import STORE_ERRORS
from statusd.outbox.store import Store, StoredEvent

log = structlog.get_logger()

MAX_MESSAGES = 20
MAX_TEXT = 10_000
HTTP_OF_EXIT = {0: 200, 2: 422, 78: 503}


def problem(status: int, sentence: str, **extra: Any) -> web.Response:
    """A refusal: one sentence in JSON."""
    return web.json_response({"error": sentence, **extra}, status=status, headers={"Cache-Control": "no-store"})


class DeskApi:
    """The desk's state (accounts, tokens) and the handlers of /api/v1."""

    def __init__(self, config: Callable[[], Config], store: Path) -> None:
        self.config = config
        self.store = store
        self.db = desk_db.open_desk(config(), store)
        self.lock = threading.Lock()  # one connection, used from worker threads in turn
        self.accounts = Accounts(self.db)
        self.tokens = Tokens(self.db, self.accounts)
        self.desk = Desk(self.accounts, Limits(self.db))

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/v1/login", self.login)
        r.add_post("/api/v1/logout", self.logout)
        r.add_post("/api/v1/enrol", self.enrol)
        r.add_get("/api/v1/status", self.status)
        r.add_put("/api/v1/status/{site}", self.set_status)
        r.add_put("/api/v1/status/{site}/{service}", self.set_status)
        r.add_post("/api/v1/preview", self.preview)
        r.add_post("/api/v1/undo", self.undo)
        r.add_post("/api/v1/retract/{update}", self.retract)
        r.add_get("/api/v1/history", self.history)

    # -- who is asking -----------------------------------------------------

    def _locked(self, work: Callable[[], Any]) -> Any:
        with self.lock:
            return work()

    async def db_call(self, work: Callable[[], Any]) -> Any:
        """Store work off the event loop, one at a time on the desk's connection. A PostgreSQL store
        that cannot answer (cut, timed out) is a 503 with its one sentence, not a 500 and a traceback."""
        try:
            return await asyncio.to_thread(self._locked, work)
        except StoreError as err:
            log.warning("desk_store_trouble", error=str(err))
            raise _raise(503, f"the desk cannot reach its store just now ({err}); try again in a moment") from None

    async def grant(self, request: web.Request) -> Grant:
        """The bearer token's grant; raises a 401 with one sentence otherwise."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _raise(401, "this needs a personal token (Authorization: Bearer …); get one with "
                              "`statusd login URL`")
        try:
            return await self.check(token.strip(), TOKEN)
        except Refused as err:
            raise _raise(401, str(err)) from None

    async def check(self, token: str, kind: str) -> Grant:
        idle = self.config().desk.token_idle if kind == TOKEN else self.config().desk.session_idle
        grant: Grant = await self.db_call(lambda: self.tokens.check(token, idle))
        return grant

    # -- accounts ----------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        name, password = _string(body, "account"), _string(body, "password")
        label = _string(body, "label", required=False) or "statusd login"
        address = request.remote or "unknown"
        try:
            person: Person = await self.db_call(lambda: authenticate(self.desk, name, password, address))
        except LoginRefused as err:
            return problem(401, str(err))
        token, _ = await self.db_call(lambda: self.tokens.issue(person.name, TOKEN, label))
        log.info("desk_token_issued", account=person.name)
        return web.json_response({"token": token, "account": person.name, "display": person.display,
                                  "role": person.role, "sites": list(person.sites)},
                                 headers={"Cache-Control": "no-store"})

    async def logout(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        token = request.headers["Authorization"].partition(" ")[2].strip()
        await self.db_call(lambda: self.tokens.revoke_token(token))
        log.info("desk_logout", account=grant.person.name)
        return web.json_response({"ok": True})

    async def enrol(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        code, password = _string(body, "code"), _string(body, "password")
        try:
            person: Person = await self.db_call(lambda: self.accounts.enrol(code, password))
        except UserError as err:
            return problem(422, str(err))
        return web.json_response({"account": person.name})

    # -- the commands ------------------------------------------------------

    async def status(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        return await self.command(grant, "show", n=_count(request, 5))

    async def history(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        # Desk staff and leads see the history of their own sites only, as they change only those.
        sites = None if grant.person.role == "admin" else list(grant.person.sites)
        return await self.command(grant, "history", n=_count(request, 20), sites=sites)

    async def set_status(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        body = await _body(request)
        target = str(Target(request.match_info["site"], request.match_info.get("service")))
        return await self.change(grant, "set", target, body)

    async def preview(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        body = await _body(request)
        return await self.change(grant, "preview", _string(body, "target"), body)

    async def change(self, grant: Grant, name: str, target: str, body: dict[str, Any]) -> web.StreamResponse:
        site = Target.parse(target.strip()).site
        if site in self.config().sites:  # an unknown site gets the command's own "unknown site" sentence
            try:
                may_change(grant.person, site)
            except Forbidden as err:
                return problem(403, str(err))
        return await self.command(grant, name, target=target, level=_string(body, "level"),
                                  message=_messages(body), starts=_optional(body, "from"),
                                  until=_optional(body, "until"))

    async def undo(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        latest = await asyncio.to_thread(self._latest)
        if latest is None:
            return await self.command(grant, "undo")
        # Take back exactly the update that was checked, even if another arrives meanwhile.
        return await self.take_back(grant, latest)

    async def retract(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant(request)
        return await self.take_back(grant, request.match_info["update"])

    async def take_back(self, grant: Grant, update: str) -> web.StreamResponse:
        event = await asyncio.to_thread(self._event, update)
        if event is not None:
            try:
                may_take_back(grant.person, event)
            except Forbidden as err:
                return problem(403, str(err))
        return await self.command(grant, "retract", update=update)

    def _latest(self) -> str | None:
        from statusd.events import STAFF_KINDS

        found = self._read(lambda s: s.latest_event([k.value for k in STAFF_KINDS]))
        return found.event.id if found else None

    def _event(self, update: str) -> Event | None:
        found = self._read(lambda s: s.event(update))
        return found.event if found else None

    def _read(self, query: Callable[[Store], StoredEvent | None]) -> StoredEvent | None:
        try:
            store = open_reader(self.config(), self.store)
        except STORE_ERRORS:
            return None  # the command itself will say what is wrong with the store
        if store is None:
            return None
        try:
            return query(store)
        except STORE_ERRORS:
            return None  # the command itself will say what is wrong with the store
        finally:
            store.close()

    async def command(self, grant: Grant, name: str, **fields: Any) -> web.StreamResponse:
        """Run the local command `name` as `grant`'s person; answer its output and exit code."""
        outcome = await self.run(grant, name, **fields)
        body: dict[str, Any] = {"exit": outcome.exit, "stdout": outcome.stdout, "stderr": outcome.stderr}
        if outcome.exit:
            body["error"] = outcome.error
        return web.json_response(body, status=HTTP_OF_EXIT.get(outcome.exit, 500),
                                 headers={"Cache-Control": "no-store"})

    async def run(self, grant: Grant, name: str, **fields: Any) -> capture.Outcome:
        """The local command `name`, run as `grant`'s person (permissions already checked)."""
        config, state = str(self.config().path.resolve()), str(self.store.parent.resolve())
        if name in ("undo", "retract"):
            argv = ["--config", config, "--state-dir", state, name, *([fields["update"]] if fields else [])]
            outcome = await asyncio.to_thread(capture.run_apart, argv, grant.person.by)
        else:
            args = argparse.Namespace(command=name, handler=_handler(name), config=config, state_dir=state,
                                      by=grant.person.by, **fields)
            outcome = await asyncio.to_thread(capture.run, args)
        log.info("desk_command", account=grant.person.name, command=name, exit=outcome.exit)
        return outcome


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    from statusd.commands import report, setting

    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "show": report.show_status, "history": report.show_history, "set": setting.set_status,
        "preview": setting.preview,
    }
    return handlers[name]


def _raise(status: int, sentence: str) -> web.HTTPException:
    kind = {401: web.HTTPUnauthorized, 400: web.HTTPBadRequest, 403: web.HTTPForbidden,
            503: web.HTTPServiceUnavailable}[status]
    headers = {"WWW-Authenticate": 'Bearer realm="statusd"'} if status == 401 else {}
    return kind(text=json.dumps({"error": sentence}), content_type="application/json", headers=headers)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _raise(400, "the request body should be a JSON object") from None
    if not isinstance(body, dict):
        raise _raise(400, "the request body should be a JSON object")
    return body


def _string(body: dict[str, Any], key: str, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _raise(400, f"{key} should be a text of at most {MAX_TEXT} characters")
    return value


def _optional(body: dict[str, Any], key: str) -> str | None:
    return _string(body, key) if body.get(key) is not None else None


def _messages(body: dict[str, Any]) -> list[str]:
    """"messages": ["fr:Fermé", …] as typed after -m, or "message": {"fr": "Fermé", …}."""
    raw = body.get("messages", [])
    by_lang = body.get("message", {})
    if not isinstance(raw, list) or not isinstance(by_lang, dict) or len(raw) + len(by_lang) > MAX_MESSAGES:
        raise _raise(400, f'messages should be a list of "lang:text" and message an object '
                          f"of lang to text, {MAX_MESSAGES} at most")
    texts = [_string({"messages": item}, "messages") for item in raw]
    return texts + [f"{_string({'message': k}, 'message')}:{_string(by_lang, k)}" for k in by_lang]


def _count(request: web.Request, default: int) -> int:
    text = request.query.get("n", str(default))
    if not text.isdigit() or not 0 < int(text) <= 1000:
        raise _raise(400, "n should be a whole number from 1 to 1000")
    return int(text)
