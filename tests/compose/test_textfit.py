"""Tests for statusd.textfit: bodies shortened at word boundaries, links always whole."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusd.textfit import ELLIPSIS, SEPARATOR, ending, fit, fit_with_tail, normalize

pytestmark = pytest.mark.unit

LINK = "https://bib.test/#main"


def weighted(text: str) -> int:
    """Counts wide characters (CJK and beyond) as 2, like X's weighting."""
    return sum(2 if ord(char) > 0x2E7F else 1 for char in text)


def link_as_23(text: str) -> int:
    """Counts the link as 23 characters whatever its length, like X's t.co."""
    return weighted(text.replace(LINK, "x" * 23))


MEASURES: list[Callable[[str], int]] = [len, weighted, link_as_23]


class TestFit:
    """fit keeps what fits, cuts the body at a word and marks the cut with an ellipsis."""

    @pytest.mark.parametrize(
        ("body", "link", "limit", "expected"),
        [
            ("Annexe : fermé.", LINK, None, f"Annexe : fermé.\n\n{LINK}"),
            ("Annexe : fermé.", LINK, 100, f"Annexe : fermé.\n\n{LINK}"),
            ("Annexe : fermé.", None, 15, "Annexe : fermé."),
            ("", LINK, 100, LINK),
            ("one two three four", None, 14, "one two three…"),
            ("one two three four", None, 13, "one two…"),
            ("one two three four", LINK, len(LINK) + 2 + 8, f"one two…\n\n{LINK}"),
            # Never "centrale :…": punctuation left dangling goes with the cut.
            ("Bibliothèque centrale : fermé", None, 26, "Bibliothèque centrale…"),
            ("Fermé. Rouvre demain", None, 12, "Fermé…"),
            # Non-breaking spaces hold "10:00 AM" together.
            ("until 10:00\u202fAM today", None, 14, "until…"),
            # A first word too long is cut, and the cut is marked.
            ("Antidisestablishmentarianism rules", None, 10, "Antidises…"),
            # No room for a word: the link alone; no room for the link: the link cut.
            ("Annexe fermée", LINK, len(LINK) + 3, LINK),
            ("Annexe fermée", LINK, 10, "https://b…"),
            ("Annexe fermée", None, 0, ""),
        ],
    )
    def test_cases(self, body: str, link: str | None, limit: int | None, expected: str) -> None:
        assert fit(body, link, limit, len) == expected

    def test_blank_lines_and_trailing_spaces_are_tidied(self) -> None:
        text = "  Fermé.   \n\n\n\nRouvre demain.  \n\n"
        assert fit(text, None, None, len) == "Fermé.\n\nRouvre demain."

    @pytest.mark.parametrize(
        ("word", "limit", "expected"),
        [
            ("e\u0301e\u0301e\u0301", 4, "e\u0301…"),  # never a bare combining accent
            ("🇫🇷🇸🇪🇩🇪", 4, "🇫🇷…"),  # never half a flag
            ("👩\u200d👩\u200d👧xyz", 6, "👩\u200d👩\u200d👧…"),  # never half a family
            ("⚠\ufe0fABC", 3, "⚠\ufe0f…"),  # never a variation selector alone
        ],
    )
    def test_character_clusters_stay_whole(self, word: str, limit: int, expected: str) -> None:
        assert fit(word, None, limit, len) == expected

    def test_uses_the_given_measure(self) -> None:
        assert fit("図書館 閉館 本日", None, 10, weighted) == "図書館…"
        assert fit("図書館 閉館 本日", None, 10, len) == "図書館 閉館 本日"


# Text that exercises the hard cases: CJK, emoji sequences, accents, odd spaces.
_ALPHABET = st.one_of(
    st.sampled_from([*"ab éà—:,.…\n\t", "\u00a0", "\u202f", "\u0301", "\u200d", "\ufe0f"]),
    st.sampled_from([*"図書館閉館本日", "🇫", "🇷", "👩", "⚠", "🏽"]),
    st.characters(codec="utf-8", exclude_categories=["Cs"]),
)
_BREAK_OR_DANGLING = " \t\n\u00a0\u202f,;:.·-–—"


class TestFitProperties:
    """For any text and limit, the result fits, keeps the link and cuts only at a word."""

    @settings(max_examples=300, deadline=None)
    @given(
        body=st.text(_ALPHABET, max_size=120),
        link=st.sampled_from([LINK, None, "https://bib.test/#annexe-été"]),
        limit=st.integers(min_value=0, max_value=200),
        measure=st.sampled_from(MEASURES),
    )
    def test_result_fits_and_keeps_the_link(
        self, body: str, link: str | None, limit: int, measure: Callable[[str], int]
    ) -> None:
        result = fit(body, link, limit, measure)
        assert measure(result) <= limit
        if link is not None and measure(link) <= limit:
            assert result.endswith(link)
            _assert_word_prefix(result[: -len(link)].removesuffix(SEPARATOR), normalize(body))

    @settings(max_examples=200, deadline=None)
    @given(body=st.text(_ALPHABET, max_size=120), measure=st.sampled_from(MEASURES))
    def test_without_a_limit_nothing_is_cut(self, body: str, measure: Callable[[str], int]) -> None:
        expected = "\n\n".join(part for part in (normalize(body), LINK) if part)
        assert fit(body, LINK, None, measure) == expected


def _assert_word_prefix(head: str, body: str) -> None:
    """`head` is the body, nothing, or a prefix cut at a word (or in the first) plus "…"."""
    if head in ("", body):
        return
    assert head.endswith(ELLIPSIS)
    kept = head[: -len(ELLIPSIS)]
    if kept.endswith(" ") and ending(kept[:-1]) == f" {ELLIPSIS}":
        kept = kept[:-1]  # " …" after a link of the body's own
    assert kept and body.startswith(kept)
    following = body[len(kept)]
    at_word = following in _BREAK_OR_DANGLING or following.isspace()
    first_word_cut = not any(c.isspace() and c not in "\u00a0\u202f\u2007\u2060" for c in kept)
    assert at_word or first_word_cut
    assert not unicodedata.combining(following)


class TestLinksInTheBody:
    """A link written in a staff message is kept whole or left out, and "…" never touches it."""

    STAFF = "Travaux : voir https://bib-lyon.fr/travaux/plan-acces-2025 pour l'accès de secours ce soir"

    @pytest.mark.parametrize("limit", range(20, len(STAFF) + len(LINK) + 2))
    def test_kept_whole_or_cut_before(self, limit: int) -> None:
        url = "https://bib-lyon.fr/travaux/plan-acces-2025"
        result = fit(self.STAFF, LINK, limit, len)
        assert len(result) <= limit
        head = result.removesuffix(LINK).removesuffix(SEPARATOR)
        assert url in head or "https://bib-lyon.fr" not in head, head
        assert f"{url}…" not in result

    def test_the_ellipsis_is_set_apart_from_a_link(self) -> None:
        body = "Plan : https://bib-lyon.fr/travaux/plan suite du message"
        result = fit(body, LINK, len("Plan : https://bib-lyon.fr/travaux/plan …") + 2 + len(LINK), len)
        assert result == f"Plan : https://bib-lyon.fr/travaux/plan …\n\n{LINK}"

    def test_a_link_as_first_word_is_never_cut(self) -> None:
        assert fit("https://bib-lyon.fr/travaux/plan-acces suite", LINK, len(LINK) + 12, len) == LINK

    @settings(max_examples=200, deadline=None)
    @given(words=st.lists(st.sampled_from(["fermé", "https://a.fr/x-y", "www.bib.fr/p", "é", "ok."]),
                          max_size=30),
           limit=st.integers(min_value=len(LINK), max_value=200))
    def test_no_link_is_ever_glued_to_the_ellipsis(self, words: list[str], limit: int) -> None:
        result = fit(" ".join(words), LINK, limit, len)
        for word in result.split():
            if "…" in word:
                assert word == "…" or "/" not in word, result


class TestLongMessages:
    """Shortening a very long message measures a few prefixes of it, not every one."""

    def test_100_kb_message(self) -> None:
        body = " ".join(f"mot{i}" for i in range(20_000))  # about 130 KB
        calls: list[int] = []

        def counting(text: str) -> int:
            calls.append(len(text))
            return len(text)

        result = fit(body, LINK, 500, counting)
        assert len(result) <= 500 and result.endswith(LINK)
        assert len(calls) < 40, len(calls)

    def test_100_kb_single_word(self) -> None:
        calls: list[int] = []

        def counting(text: str) -> int:
            calls.append(len(text))
            return len(text)

        result = fit("x" * 100_000, None, 300, counting)
        assert result == "x" * 299 + ELLIPSIS
        assert len(calls) < 60, len(calls)


class TestFitWithTail:
    """A tail (the time that sets a repeated post apart) stays whole; the body gives way."""

    def test_short_body_gets_the_tail_before_the_link(self) -> None:
        assert fit_with_tail("Annexe : fermé.", "(10:10)", LINK, 280, len) == f"Annexe : fermé. (10:10)\n\n{LINK}"

    @pytest.mark.parametrize("measure", MEASURES)
    def test_long_body_is_cut_and_the_tail_kept(self, measure: Callable[[str], int]) -> None:
        body = " ".join(f"mot{i}" for i in range(200))
        result = fit_with_tail(body, "(mise à jour de 10:10)", LINK, 280, measure)
        assert measure(result) <= 280
        assert result.endswith(f"{ELLIPSIS} (mise à jour de 10:10){SEPARATOR}{LINK}"), result
