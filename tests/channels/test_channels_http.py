"""statusd/channels/http.py: one sentence per way a request fails, and bodies never quoted raw."""

from __future__ import annotations

import aiohttp
import pytest

from statusd.channels import http
from statusd.channels.base import TransientError
from tests.support.fakes import blackhole, refusing_port

pytestmark = pytest.mark.e2e  # two cases open local sockets

SECRET = "EAAB-a-page-token-0123456789"


class TestTransportErrors:
    """Timeouts and connection failures are TransientErrors naming the host, never the path."""

    def test_timeout(self) -> None:
        error = http.transport_error(TimeoutError(), "hooks.example", 2.5)
        assert isinstance(error, TransientError)
        assert str(error) == "no answer from hooks.example within 2.5 s"

    def test_invalid_url(self) -> None:
        error = http.transport_error(aiohttp.InvalidURL(f"https://x/?token={SECRET}"), "x", 1)
        assert error is not None and SECRET not in str(error) and "not a valid URL" in str(error)

    def test_anything_else_is_not_a_transport_error(self) -> None:
        assert http.transport_error(ValueError("no JSON"), "x", 1) is None

    async def test_refused_connection(self) -> None:
        port = refusing_port()
        with pytest.raises(TransientError, match=rf"cannot reach 127.0.0.1:{port}: ") as caught:
            async with http.session(1.0) as session, http.mapped(f"127.0.0.1:{port}", 1.0):
                await session.get(f"http://127.0.0.1:{port}/hook?token={SECRET}")
        assert SECRET not in str(caught.value)
        assert isinstance(caught.value.__cause__, aiohttp.ClientError)

    async def test_silent_server(self) -> None:
        with blackhole() as port:
            with pytest.raises(TransientError, match=r"no answer from silent within 0\.2 s"):
                async with http.session(0.2) as session, http.mapped("silent", 0.2):
                    await session.get(f"http://127.0.0.1:{port}/")


class TestSnippet:
    """A body is quoted as at most 200 characters of text, tags out, secrets blanked."""

    @pytest.mark.parametrize(("body", "expected"), [
        ("<html><head><style>p{color:red}</style></head><body><h1>400</h1><p>Invalid Bearer token</p>"
         "</body></html>", "400 Invalid Bearer token"),
        ('{"error":"bad"}', '{"error":"bad"}'),
        (f"token {SECRET} refused", "token [secret] refused"),
        ("  many\n\n  spaces\t", "many spaces"),
        ("", ""),
    ])
    def test_table(self, body: str, expected: str) -> None:
        assert http.snippet(body, [SECRET]) == expected

    def test_long_bodies_are_cut(self) -> None:
        assert len(http.snippet("<p>" + "x " * 100_000 + "</p>")) == http.SNIPPET

    def test_short_secrets_do_not_blank_words(self) -> None:
        assert http.redact("a bad token", ["bad"]) == "a bad token"
