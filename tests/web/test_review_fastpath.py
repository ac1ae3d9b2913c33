"""Hostile requests for status.json's fast path: what aiohttp refuses, the fast path must not answer."""

from __future__ import annotations

import pytest

from tests.web.test_web_fastpath import Twins, same, twins  # noqa: F401  (twins: the module's fixture)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("fields", [126, 127, 128, 129, 400])
def test_as_many_header_fields_as_aiohttp_takes_and_no_more(twins: Twins, fields: int) -> None:  # noqa: F811
    # aiohttp's RequestHandler takes at most 128 fields (max_headers) and answers 400 past them.
    head = b"Host: x\r\n" + b"X: y\r\n" * (fields - 1)
    answer = same(twins, b"GET /status.json HTTP/1.1\r\n" + head + b"\r\n")
    assert answer.split(b"\r\n", 1)[0].endswith(b"200 OK" if fields <= 128 else b"400 Bad Request"), answer[:40]
