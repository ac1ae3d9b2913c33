"""status.yaml read block by block says exactly what the whole read says, for any text and any history."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusd.config.load import Config
from statusd.errors import ConfigError
from statusd.model import Target, Wanted
from statusd.sources.status import blocks as status_blocks
from statusd.sources.status import bounds
from statusd.sources.status import file as status_file
from statusd.sources.status.blocks import Blocks, cut

pytestmark = pytest.mark.unit

KEYS = st.sampled_from(["main", "annexe", "mian", "wifi", "123", "true", "null", '"main"', "main.x"])
TEXT = st.text(st.characters(codec=None), max_size=12)
VALUES = st.one_of(
    st.sampled_from(["closed", "open", "limited", "emergency", "clsoed", "", "~", "[]", "{}", "&a closed",
                     "*a", "!!str closed", "2026-12-03T09:00:00+01:00", "2026-12-03 09:00", "'q'", '"q\\n"',
                     "|", ">", "{level: closed}", "{level: closed", "#", "a: b"]),
    TEXT)
FIELDS = st.sampled_from(["level", "message", "until", "from", "by", "at", "services", "wifi", "en", "fr", "x"])
INDENTS = st.sampled_from(["  ", "    ", " ", "\t", "", "   - "])


@st.composite
def status_texts(draw: st.DrawFn) -> str:
    """Mostly the shape people write, with every odd thing a file can hold mixed in."""
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.sampled_from(["", "# note", "---", "%YAML 1.2", "...", "- main", "? main",
                                                "\ufeff", "main: &a {level: closed}", "annexe: *a"])))
            continue
        lines.append(f"{draw(KEYS)}:" + (f" {draw(VALUES)}" if kind == 1 else ""))
        for _ in range(draw(st.integers(0, 4))):
            lines.append(f"{draw(INDENTS)}{draw(FIELDS)}: {draw(VALUES)}")
            if draw(st.booleans()):
                lines.append(f"{draw(INDENTS)}  {draw(FIELDS)}: {draw(VALUES)}")
    return draw(st.sampled_from(["\n", "\r\n", "\n\n"])).join(lines) + draw(st.sampled_from(["", "\n", "\r"]))


def whole(text: str, config: Config) -> Wanted | list[str]:
    try:
        return status_file.parse(text, "status.yaml", config)
    except ConfigError as err:
        return [str(p) for p in err.problems]


def by_blocks(cache: Blocks, text: str, config: Config) -> Wanted | list[str]:
    try:
        return cache.parse(text, "status.yaml", config)
    except ConfigError as err:
        return [str(p) for p in err.problems]


GOOD = """\
# the desk's file
main:
  level: closed
  message: {en: Flood, fr: Inondation}
  until: 2026-12-03T18:00:00+01:00
  services:
    wifi: {level: limited}

annexe:
  level: limited
  message:
    en: Short staffed
"""


class TestTheSameAsWhole:
    @pytest.mark.parametrize("few", [0, 1, status_blocks.FEW])  # whole reads fill the memory, too
    @settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(texts=st.lists(status_texts(), min_size=1, max_size=4))
    def test_any_history_of_texts(self, config: Config, few: int, texts: list[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(status_blocks, "FEW", few)
        cache = Blocks()
        for text in texts:
            assert by_blocks(cache, text, config) == whole(text, config), text

    @settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(edit=st.tuples(st.integers(0, len(GOOD)), st.integers(0, 20), TEXT))
    def test_any_edit_of_a_good_file(self, config: Config, edit: tuple[int, int, str]) -> None:
        at, cut_out, added = edit
        cache = Blocks()
        assert by_blocks(cache, GOOD, config) == whole(GOOD, config)
        text = GOOD[:at] + added + GOOD[at + cut_out:]
        assert by_blocks(cache, text, config) == whole(text, config), text
        assert by_blocks(cache, GOOD, config) == whole(GOOD, config)


class TestTheCut:
    def test_a_plain_file_is_cut_at_its_sites(self) -> None:
        pieces = cut(GOOD)
        assert pieces is not None
        assert [key for key, _ in pieces] == ["main", "annexe"]
        assert "".join(block for _, block in pieces) == GOOD

    @pytest.mark.parametrize("text", ["---\nmain: {level: closed}\n", "main: &a {level: closed}\nannexe: *a\n",
                                      "main: {level: closed}\nmain: {level: open}\n", "- main\n",
                                      "  main: {level: closed}\n", "main: {level: closed}\r\n",
                                      "main: !!map {level: closed}\n", "# only a comment\n", ""])
    def test_what_it_cannot_vouch_for_is_read_whole(self, text: str) -> None:
        assert cut(text) is None

    def test_an_unchanged_block_is_not_checked_again(self, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
        cache = Blocks()
        cache.parse(GOOD, "status.yaml", config)
        checked: list[str] = []
        real = status_file.check

        def check(node: Any, *args: Any) -> Wanted:
            checked.append(next(iter(node)))
            return real(node, *args)

        monkeypatch.setattr(status_file, "check", check)
        wanted = cache.parse(GOOD.replace("Short staffed", "Two desks open"), "status.yaml", config)
        assert checked == ["annexe"]
        assert wanted[Target("main", "wifi")].level == "limited"

    def test_too_many_values_in_all_is_refused_as_the_whole_read_refuses(
            self, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(bounds, "MAX_NODES", 12)
        cache = Blocks()
        assert by_blocks(cache, GOOD, config) == whole(GOOD, config)
        assert isinstance(whole(GOOD, config), list)

    def test_a_block_longer_than_any_entry_is_read_whole_once(
            self, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
        cache = Blocks()
        cache.parse(GOOD, "status.yaml", config)
        monkeypatch.setattr(Blocks, "_one", staticmethod(lambda *a: pytest.fail("read on its own first")))
        long = GOOD.replace("Short staffed", "x" * status_blocks.BIG)
        assert by_blocks(cache, long, config) == whole(long, config)
