"""The desk on the public listener: its API under /api/v1 and its pages under /desk/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from statusd.config.load import Config
from statusd.desk.api import DeskApi
from statusd.desk.pages import DeskPages
from statusd.desk.sso_routes import SsoRoutes


def add_routes(app: web.Application, config: Callable[[], Config], store: Path) -> DeskApi:
    """Register the desk API and the desk pages on `app`; the API's database closes with it."""
    api = DeskApi(config, store)
    api.routes(app)
    pages = DeskPages(api)
    pages.routes(app)
    SsoRoutes(pages).routes(app)

    async def close(_: web.Application) -> None:
        await api.db_call(api.db.close)

    app.on_cleanup.append(close)
    return api
