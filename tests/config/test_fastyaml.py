"""The config reader's libyaml path reads every document exactly as ruamel does, or leaves it to ruamel."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarint import ScalarInt

from statusd.config import fastyaml, reader

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent.parent
SHIPPED = [REPO / "statusd.yaml", REPO / "alerts" / "labels.yaml", REPO / "alerts" / "presets.yaml"]


def ruamel(text: str) -> Any:
    return YAML(typ="rt").load(text)


def lines(node: Any, where: str = "") -> dict[str, int | None]:
    """Every node's, key's and item's line as the reader reports it, by dotted path."""
    found: dict[str, int | None] = {where: reader.node_line(node)}
    if isinstance(node, dict):
        for key, value in node.items():
            found[f"{where}.{key}:key"] = reader.key_line(node, key)
            found.update(lines(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found[f"{where}[{index}]:item"] = reader.item_line(node, index)
            found.update(lines(value, f"{where}[{index}]"))
    return found


def same(text: str) -> None:
    done, fast = fastyaml.loads(text)
    assert done
    slow = ruamel(text)
    assert fast == slow
    assert lines(fast) == lines(slow)


class TestShippedFiles:
    """The shipped config, the full example and the wording files take the fast path, unchanged."""

    @pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
    def test_values_and_lines(self, path: Path) -> None:
        same(path.read_text(encoding="utf-8"))

    def test_the_full_example_is_read_by_ruamel(self) -> None:
        """Its queue bands have keys like 15_30, which YAML 1.2 reads as the number 1530."""
        text = (REPO / "examples" / "statusd.full.yaml").read_text(encoding="utf-8")
        assert fastyaml.loads(text) == (False, None)
        assert reader.loads(text, "statusd.full.yaml") == ruamel(text)

    def test_a_generated_config_of_500_sites(self, tmp_path: Path) -> None:
        sys.path.insert(0, str(REPO / "bench"))
        try:
            import command
        finally:
            sys.path.remove(str(REPO / "bench"))
        same(command.write(tmp_path, 128, 500).read_text(encoding="utf-8"))


class TestLeftToRuamel:
    """What only ruamel builds exactly goes to ruamel, whose errors and types stay."""

    @pytest.mark.parametrize("text", [
        "a: 1.5\n", "a: 0x1f\n", "a: 010\n", "a: 1_000\n", "a: !!str 1\n",
        "a: &x 1\nb: *x\n", "a: {<<: {b: 1}}\n", "a: 1\na: 2\n", "a: [1\n", "b: |\n  two\n  lines\n", "---\na: 1\n---\nb: 2\n",
        "%YAML 1.1\n---\na: yes\n",
    ])
    def test_gives_up(self, text: str) -> None:
        assert fastyaml.loads(text) == (False, None)

    def test_a_duplicate_key_keeps_ruamels_message(self) -> None:
        with pytest.raises(Exception) as caught:
            reader.loads("a: 1\na: 2\n", "f.yaml")
        assert "invalid YAML" in str(caught.value.problems[0])  # type: ignore[attr-defined]

    @pytest.mark.parametrize("text", ["a: yes\n", "a: no\nb: on\n", "t: 12:30\n", "a: True\nb: FALSE\n",
                                      "a: ~\nb:\nc: null\n", "n: -3\nm: +4\n", "", "# only a comment\n",
                                      "s: 'quoted: 1'\nd: \"a\\tb\"\n", "l: [a, {b: c}, [1, 2]]\n"])
    def test_yaml_12_words_as_ruamel_reads_them(self, text: str) -> None:
        same(text)


class TestTimestamps:
    """A date or a timestamp (status.yaml's `at:`) is built by ruamel's own constructor, as ruamel builds it."""

    @pytest.mark.parametrize("value", ["2025-01-01", "2026-12-02T10:39:59.199032+01:00", "2026-01-01 10:00:00",
                                       "2026-01-01T10:00:00Z", "2026-1-1 1:00:00 -5", "2002-12-14t21:59:43.10-05:00"])
    def test_same_value_type_zone_and_form(self, value: str) -> None:
        text = f"a: {value}\n"
        done, fast = fastyaml.loads(text)
        slow = ruamel(text)
        assert done
        assert (type(fast["a"]), fast["a"]) == (type(slow["a"]), slow["a"])
        assert getattr(fast["a"], "tzinfo", None) == getattr(slow["a"], "tzinfo", None)
        assert getattr(fast["a"], "_yaml", None) == getattr(slow["a"], "_yaml", None)


SCALARS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["true", "False", "yes", "no", "on", "~", "null", "", "12:30", "1e3", "0o7", ".inf"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)


def _document(draw: st.DrawFn) -> str:
    keys = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True), min_size=1, max_size=5,
                         unique=True))
    out = []
    for key in keys:
        value = draw(SCALARS)
        style = draw(st.sampled_from(["plain", "single", "double", "flow"]))
        if style == "single":
            value = "'" + value.replace("'", "''") + "'"
        elif style == "double":
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elif style == "flow":
            value = f"[{value}, x]"
        out.append(f"{key}: {value}")
    return "\n".join(out) + "\n"


class TestHostileText:
    """Whatever the text, the fast path either matches ruamel exactly or gives up."""

    @settings(max_examples=300, deadline=None)
    @given(st.composite(_document)())
    def test_matches_or_gives_up(self, text: str) -> None:
        done, fast = fastyaml.loads(text)
        if not done:
            return
        slow = ruamel(text)
        assert fast == slow
        assert [type(v) for v in _leaves(fast)] == [_kind(v) for v in _leaves(slow)]
        assert lines(fast) == lines(slow)


def _kind(value: Any) -> type:
    """ruamel keeps a 0 as its ScalarInt (an int remembering its width, for writing back): an int."""
    return int if isinstance(value, ScalarInt) and value == 0 else type(value)


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]
