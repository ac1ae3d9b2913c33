"""The Matrix channel's pure parts: transaction ids, the notice's content, and how errors are read."""

from __future__ import annotations

import html
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statusd.channels import CHANNELS
from statusd.channels.base import PermanentError, Reply, TransientError
from statusd.channels.matrix import KEY_FIELD, Matrix, answer, notice, to_html, txn_id
from statusd.compose.message import Message

pytestmark = pytest.mark.unit

LINK = "http://127.0.0.1:8080/#main"


class TestTransactionId:
    """A key always maps to the same URL-safe transaction id, and different keys to different ones."""

    def test_registered(self) -> None:
        assert CHANNELS["matrix"] is Matrix and Matrix.honours_idempotency is True

    @given(st.text(min_size=1), st.text(min_size=1))
    def test_stable_and_distinct(self, one: str, other: str) -> None:
        assert txn_id(one) == txn_id(one)
        assert re.fullmatch(r"statusd\.[0-9a-f]{40}", txn_id(one))
        assert (txn_id(one) == txn_id(other)) == (one == other)


class TestContent:
    """The notice holds the plain text, escaped HTML with the link clickable, our key, and the thread."""

    def test_thread_relation(self) -> None:
        message = Message(f"Fermé.\n\n{LINK}", "fr", LINK, "e", "status_changed", "main", "closed")
        content = notice(message, "k", Reply(parent="$parent", root="$root"))
        assert content["m.relates_to"] == {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
                                           "m.in_reply_to": {"event_id": "$parent"}}
        assert content[KEY_FIELD] == "k" and content["msgtype"] == "m.notice"
        assert content["formatted_body"] == f'Fermé.<br>\n<br>\n<a href="{LINK}">{LINK}</a>'

    def test_foreign_reply_ids_refused(self) -> None:
        message = Message("x", "fr", None, "e", "k", "main", "closed")
        with pytest.raises(PermanentError, match="not a Matrix event id"):
            notice(message, "k", Reply(parent="12345", root="12345"))

    @given(st.text())
    def test_html_is_the_text_escaped(self, text: str) -> None:
        rendered = to_html(text, None)
        assert "<" not in rendered.replace("<br>", "")
        assert html.unescape(rendered.replace("<br>\n", "\n")) == text


class TestErrors:
    """Homeserver errors (errcode, error, retry_after_ms) become Transient or Permanent errors."""

    def test_rate_limit_in_the_body(self) -> None:
        body = json.dumps({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 2500})
        with pytest.raises(TransientError, match=r"retry in 2\.5 s") as caught:
            answer(429, {}, body, "post in the room")
        assert caught.value.retry_after == 2.5

    def test_rate_limit_in_the_header(self) -> None:
        with pytest.raises(TransientError) as caught:
            answer(429, {"Retry-After": "3"}, "", "post in the room")
        assert caught.value.retry_after == 3.0

    def test_proxy_html_is_transient(self) -> None:
        with pytest.raises(TransientError, match="502 Bad Gateway"):
            answer(502, {}, "<html><title>502 Bad Gateway</title></html>", "post in the room")

    def test_too_large_is_permanent(self) -> None:
        body = json.dumps({"errcode": "M_TOO_LARGE", "error": "event too large"})
        with pytest.raises(PermanentError, match="M_TOO_LARGE"):
            answer(413, {}, body, "post in the room")

    def test_soft_logout_names_the_secret(self) -> None:
        body = json.dumps({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed.", "soft_logout": True})
        with pytest.raises(PermanentError, match="from environment variable MX is not valid"):
            answer(401, {}, body, "post in the room", token_from="environment variable MX")

    @given(status=st.integers(100, 599), body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["errcode", "error", "retry_after_ms", "event_id", "room_id"]), inner, max_size=4),
        max_leaves=10))
    def test_any_answer_is_a_result_or_a_channel_error(self, status: int, body: object) -> None:
        try:
            result = answer(status, {}, json.dumps(body), "post in the room")
        except (TransientError, PermanentError) as err:
            assert str(err)
        else:
            assert isinstance(result, dict) and status < 300
