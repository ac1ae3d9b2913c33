"""`statusd set`'s partial read of statusd.yaml: the same site and problems as the whole load, or the whole load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statusd import loading
from statusd.config import layout, scoped
from statusd.config.load import Config
from statusd.errors import ConfigError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent.parent

GOOD = """\
public_url: http://127.0.0.1:8080
languages: [fr, en]
sites:
  main:
    name: {fr: Centrale, en: Central}
    timezone: Europe/Paris
    hours: {mo-fr: "09:00-20:00", sa: "10:00-12:30, 14:00-18:00", su: closed}
    services: {wifi: Wi-Fi}
  annexe:
    name: L'annexe
    timezone: America/Montreal
    services:
      printing: {fr: Impression, en: Printing}
channels:
  console: {type: console, language: en}
  hook: {type: webhook, url: "http://127.0.0.1:9/h", secret: {env: STATUSD_SCOPED_UNSET}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "statusd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Whole:
    """The whole load, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> Config:
        self.calls += 1
        return loading.load(path)


class TestSameAsTheWholeLoad:
    """What the partial read holds is what the whole load holds, and it reads no more than it must."""

    def test_the_site_and_the_settings(self, tmp_path: Path) -> None:
        path, whole = write(tmp_path, GOOD), Whole()
        part, full = scoped.load_for(path, "main", whole), loading.load(path)
        assert whole.calls == 0 and part.scope is not None
        assert part.sites["main"] == full.sites["main"]
        assert list(part.sites) == list(full.sites)
        assert (part.languages, part.status_file, part.status_max_bytes, part.store, part.require) == (
            full.languages, full.status_file, full.status_max_bytes, full.store, full.require)
        assert part.scope.channels == ("console", "hook")
        assert set(part.sites.done) == {"main"}  # type: ignore[attr-defined]

    def test_another_site_is_read_when_asked_for(self, tmp_path: Path) -> None:
        path = write(tmp_path, GOOD)
        part = scoped.load_for(path, "main", Whole())
        assert part.sites["annexe"] == loading.load(path).sites["annexe"]

    def test_the_shipped_files(self) -> None:
        for name in ("statusd.yaml", "examples/statusd.full.yaml"):
            text = (REPO / name).read_text(encoding="utf-8")
            assert layout.find(text) is not None, name


class TestProblems:
    """A problem in what is read is reported as the whole load reports it: file, line, field."""

    def test_in_the_site(self, tmp_path: Path) -> None:
        path = write(tmp_path, GOOD.replace("timezone: Europe/Paris", "timezone: Mars/Olympus"))
        with pytest.raises(ConfigError) as caught:
            scoped.load_for(path, "main", Whole())
        with pytest.raises(ConfigError) as full:
            loading.load(path)
        assert [str(p) for p in caught.value.problems] == [str(p) for p in full.value.problems]
        assert str(caught.value.problems[0]).startswith(f"{path}:6: sites.main.timezone: unknown time zone")

    def test_in_a_site_read_later(self, tmp_path: Path) -> None:
        path = write(tmp_path, GOOD.replace("America/Montreal", "Nowhere/Else"))
        part = scoped.load_for(path, "main", Whole())
        with pytest.raises(ConfigError) as caught:
            part.sites["annexe"]
        assert str(caught.value.problems[0]).startswith(f"{path}:11: sites.annexe.timezone: unknown time zone")

    def test_in_a_top_level_setting(self, tmp_path: Path) -> None:
        path = write(tmp_path, GOOD.replace("languages: [fr, en]", "languages: [fr, EN]"))
        with pytest.raises(ConfigError) as caught:
            scoped.load_for(path, "main", Whole())
        assert str(caught.value.problems[0]).startswith(f"{path}:2: languages: every entry")


class TestGivesUp:
    """Whatever the lines cannot vouch for is read by the whole load."""

    @pytest.mark.parametrize("text", [
        GOOD.replace("name: L'annexe", "name: 'L''annexe\n  main2:\n    x: 1'"),  # a quote over a key's line
        GOOD.replace("name: L'annexe", "name: 'L'annexe"),  # more after a quoted scalar
        GOOD.replace("languages: [fr, en]", "languages: [fr,\nen]"),  # a flow over a top-level line
        GOOD.replace("sites:\n", "sites: &s\n"),  # an anchor where a block mapping is expected
        GOOD.replace("  annexe:", "  main:"),  # a duplicate site
        GOOD.replace("  annexe:", '  "annexe":'),  # a quoted key
        "---\n" + GOOD,
        GOOD.replace("  main:\n", "  main:\n\t\n"),
    ])
    def test_the_whole_load_reads_it(self, tmp_path: Path, text: str) -> None:
        assert layout.find(text) is None

    def test_an_alias_in_the_site(self, tmp_path: Path) -> None:
        text = GOOD.replace("languages: [fr, en]", "languages: [fr, en]\nx_zone: &tz Europe/Paris").replace(
            "timezone: Europe/Paris", "timezone: *tz")
        whole = Whole()
        with pytest.raises(ConfigError):  # x_zone is not a key; the whole load says so
            scoped.load_for(write(tmp_path, text), "main", whole)
        assert whole.calls == 1

    def test_a_flow_over_deeper_lines_is_read(self) -> None:
        found = layout.find(GOOD.replace("hours: {mo-fr", "hours: {\n      mo-fr"))
        assert found is not None and list(found.sites) == ["main", "annexe"]


class TestSetChecksWhatItUses:
    """`statusd set` still refuses a status.yaml the daemon would refuse, reading other sites as it needs them."""

    def _set(self, tmp_path: Path, status: str, config: str = GOOD) -> subprocess.CompletedProcess[str]:
        write(tmp_path, config)
        (tmp_path / "status.yaml").write_text(status, encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "statusd", "--config", str(tmp_path / "statusd.yaml"),
                               "--state-dir", str(tmp_path / "state"), "set", "main", "limited"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, check=False)

    def test_an_unknown_service_of_another_site(self, tmp_path: Path) -> None:
        done = self._set(tmp_path, "annexe:\n  services:\n    cafe: {level: closed, message: x}\n")
        assert done.returncode == 2 and "unknown service" in done.stderr and "Traceback" not in done.stderr

    def test_a_known_service_of_another_site(self, tmp_path: Path) -> None:
        done = self._set(tmp_path, "annexe:\n  services:\n    printing: {level: closed, message: x}\n")
        assert done.returncode == 0, done.stderr

    def test_a_broken_site_that_status_needs(self, tmp_path: Path) -> None:
        """A time in another site's entry needs its time zone: a broken one is a config error, named so."""
        config = GOOD.replace("America/Montreal", "Nowhere/Else")
        done = self._set(tmp_path, "annexe:\n  level: closed\n  message: x\n  until: 2099-01-01 10:00\n", config)
        assert done.returncode == 78, done.stderr
        assert "statusd.yaml:11: sites.annexe.timezone: unknown time zone" in done.stderr

    def test_a_broken_site_that_nothing_needs(self, tmp_path: Path) -> None:
        config = GOOD.replace("America/Montreal", "Nowhere/Else")
        done = self._set(tmp_path, "annexe:\n  level: open\n", config)
        assert done.returncode == 0, done.stderr  # left to the daemon and `statusd check`
