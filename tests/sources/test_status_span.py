"""`statusd set` rewrites only the target site's block: the same text as a whole-file round trip, faster."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusd import loading
from statusd.model import Level, StatusEntry, Target
from statusd.sources.status import span
from statusd.sources.status.edit import set_entry

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent.parent / "data" / "status"
CONFIG = loading.load(DATA / "statusd.yaml")
AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
CLOSED = StatusEntry(Level.CLOSED, {"fr": "Fermé", "en": "Closed"}, by="bob", at=AT)

DOCUMENTS = {
    "plain": "main:\n  level: open\nannexe:\n  level: closed\n",
    "comments between": "# head\nmain:\n  level: open   # eol\n\n# about the annexe\nannexe:\n  level: open\n# end\n",
    "services": "main:\n    level: open\n    services:\n        wifi: {level: limited}\nannexe:\n    level: open\n",
    "last, no newline": "annexe:\n  level: open\nmain:\n  level: limited\n  message: {fr: 'Lent'}",
    "quoted key": "'main':\n  level: open\n\"annexe\":\n  level: open\n",
    "unicode before": "annexe:\n  level: closed\n  message: Fermé — travaux 🚧\nmain:\n  level: open\n",
}


def _written(tmp_path: Path, text: str, target: Target, whole: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / ("whole.yaml" if whole else "span.yaml")
    path.write_text(text, encoding="utf-8")
    with monkeypatch.context() as patch:
        if whole:
            patch.setattr(span, "find", lambda text, site: None)
        set_entry(path, CONFIG, target, CLOSED)
    return path.read_text(encoding="utf-8")


class TestSameAsTheWholeFile:
    """Where ruamel would write the other sites back unchanged, both ways give the same bytes."""

    @pytest.mark.parametrize("name", list(DOCUMENTS))
    @pytest.mark.parametrize("target", [Target("main"), Target("main", "printing"), Target("annexe")])
    def test_same_text(self, name: str, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        text = DOCUMENTS[name]
        assert span.find(text, target.site) is not None
        fast = _written(tmp_path, text, target, whole=False, monkeypatch=monkeypatch)
        slow = _written(tmp_path, text, target, whole=True, monkeypatch=monkeypatch)
        assert fast.rstrip("\n") == slow.rstrip("\n")


class TestOtherSitesUntouched:
    """Another site's lines stay byte for byte, even in a style ruamel would rewrite."""

    def test_odd_spacing_kept(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        text = "main:\n  level: open\nannexe:\n      level:    closed\n      message: {   fr: 'x' }\n"
        fast = _written(tmp_path, text, Target("main"), whole=False, monkeypatch=monkeypatch)
        assert fast.endswith("annexe:\n      level:    closed\n      message: {   fr: 'x' }\n")
        assert fast.startswith("main:\n  level: closed\n")


class TestGivesUp:
    """What a block read alone could read differently goes through the whole file's round trip."""

    @pytest.mark.parametrize("text", [
        "main: &a\n  level: open\nannexe: *a\n",
        "main:\n  level: open\nannexe:\n  message: &m x\n  by: *m\n",
        "---\nmain:\n  level: open\n",
        "%YAML 1.2\n---\nmain:\n  level: open\n",
        "{main: {level: open}}\n",
        "main: {level: open}\n",
        "main:\n  level: open\nmain:\n  level: closed\n",
        "main:\n\tlevel: open\n",
        "annexe:\n  level: open\n",
        "main: !!map\n  level: open\n",
        "main:\n  level: open\n---\nannexe: {}\n",
        "- main\n",
        "",
    ])
    def test_none(self, text: str) -> None:
        assert span.find(text, "main") is None
