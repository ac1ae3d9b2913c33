"""statusd.yaml: text checked with file, line and field; a file others could write is refused; ops.listen."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd import loading as config_module
from statusd import metrics, tasks
from statusd.config.trust import untrusted
from statusd.errors import ConfigError
from tests.conftest import ALERTS, BASE, CONSOLE, WriteConfig

pytestmark = pytest.mark.unit


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_module.load(path)
    return [str(p) for p in caught.value.problems]


class TestConfigText:
    """A control character or lone surrogate anywhere in statusd.yaml is one located problem."""

    @pytest.mark.parametrize(("value", "shown"), [
        ('"Centrale\\x1b]0;x\\x07"', "U+001B"), ('"nul\\0"', "U+0000"), ('"a\\ud800b"', "U+D800"),
        ('"cr\\rhere"', "U+000D"), ('"c1\\x85"', "U+0085"),
    ])
    def test_site_name(self, write_config: WriteConfig, value: str, shown: str) -> None:
        path = write_config()
        text = path.read_text(encoding="utf-8").replace("en: Central Library", f"en: {value}")
        assert text != path.read_text(encoding="utf-8")
        path.write_text(text, encoding="utf-8")
        (found,) = [p for p in _problems(path) if shown in p]
        assert found.startswith(f"{path}:") and "sites.main.name.en:" in found

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=st.text(min_size=1, max_size=20), value=st.text(max_size=40))
    def test_any_key_and_value_never_crash(self, write_config: WriteConfig, key: str, value: str) -> None:
        path = write_config()
        quoted = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        qkey = key.encode("unicode_escape").decode("ascii").replace('"', '\\"')
        path.write_text(path.read_text(encoding="utf-8") + f'web: {{"{qkey}": "{quoted}"}}\n', encoding="utf-8")
        try:
            config_module.load(path)
        except ConfigError as err:
            for problem in err.problems:
                str(problem).encode("utf-8", "surrogateescape")


class TestStrictModes:
    """A config, alerts directory or parent that a non-root user could have written is refused."""

    def test_group_writable_file(self, write_config: WriteConfig) -> None:
        path = write_config()
        os.chown(path, 0, 65534)
        path.chmod(0o664)
        (found,) = _problems(path)
        assert found.startswith(f"{path}: is writable by group nogroup (mode 0664)")

    def test_world_writable_parent(self, write_config: WriteConfig) -> None:
        path = write_config()
        path.parent.chmod(0o777)
        try:
            (found,) = _problems(path)
        finally:
            path.parent.chmod(0o700)
        assert found.startswith(f"{path.parent}: is writable by everyone (mode 0777)")

    def test_someone_elses_file(self, write_config: WriteConfig) -> None:
        path = write_config()
        os.chown(path, 65534, 65534)
        (found,) = _problems(path)
        assert "belongs to user nobody" in found

    def test_alerts_template_writable(self, tmp_path: Path) -> None:
        alerts = tmp_path / "alerts"
        alerts.mkdir()
        (alerts / "status_changed.fr.txt").write_text("{{ message }}", encoding="utf-8")
        (alerts / "status_changed.fr.txt").chmod(0o666)
        found = untrusted(tmp_path / "statusd.yaml", alerts)
        assert [p.file for p in found] == [str(alerts / "status_changed.fr.txt")]

    def test_sticky_root_directory_and_own_files_pass(self, write_config: WriteConfig) -> None:
        assert Path("/tmp").stat().st_mode & 0o1000
        assert untrusted(write_config(), ALERTS) == []


class TestOpsListen:
    """ops.listen is HOST:PORT; the default is loopback 9108."""

    def test_default(self, write_config: WriteConfig) -> None:
        config = config_module.load(write_config())
        assert (config.ops_host, config.ops_port) == ("127.0.0.1", 9108)

    @pytest.mark.parametrize(("listen", "host", "port"), [
        ("10.0.0.5:9200", "10.0.0.5", 9200), ("'[::1]:9109'", "::1", 9109), ("localhost:1", "localhost", 1)])
    def test_set(self, tmp_path: Path, listen: str, host: str, port: int) -> None:
        path = tmp_path / "statusd.yaml"
        path.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h") + f"ops: {{listen: {listen}}}\n")
        config = config_module.load(path)
        assert (config.ops_host, config.ops_port) == (host, port)

    @pytest.mark.parametrize("listen", ["9108", "host:", ":9108", "a:99999", "a b:1", "[zz]:1"])
    def test_refused(self, tmp_path: Path, listen: str) -> None:
        path = tmp_path / "statusd.yaml"
        path.write_text(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h") + f"ops: {{listen: '{listen}'}}\n")
        (found,) = _problems(path)
        assert "ops.listen: should be HOST:PORT" in found


class TestBoundedLabels:
    """A reading's metric label is its configured feed, or `other`: never a sensor id."""

    def test_labels(self) -> None:
        metrics.know_feeds(["counters"])
        try:
            assert metrics.feed_label("counters/door-\ud800") == "counters"
            assert metrics.feed_label("counters") == "counters"
            assert metrics.feed_label("invented/x") == metrics.OTHER
            for n in range(50):
                metrics.READINGS.labels(metrics.feed_label(f"counters/s{n}"), "ingested").inc()
            text = metrics.render().decode()
            assert "s49" not in text
        finally:
            metrics.know_feeds([])


class TestSpawn:
    """tasks.spawn keeps the task until it ends and logs a crash once, by name."""

    async def test_crash_logged_and_reference_dropped(self) -> None:
        async def boom() -> None:
            raise RuntimeError("boom")

        with capture_logs() as seen:
            task = tasks.spawn(boom(), "boom-task")
            assert task in tasks.running()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0)
        assert task not in tasks.running()
        assert [e for e in seen if e["event"] == "task_crashed"] == [
            {"event": "task_crashed", "task": "boom-task", "error_type": "RuntimeError", "log_level": "error"}]


_SCALAR = (st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from(["1s", "-1s", "10**9", "http://x", "env", "main", "fr"]))
_TREE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10) | st.sampled_from(
                         ["type", "token", "env", "url", "name", "capacity", "zones", "language", "listen",
                          "hours", "every", "site", "zone", "timezone", "file", "credential"]), inner, max_size=4),
                     max_leaves=25)
_SECTIONS = ["sites", "channels", "feeds", "rules", "web", "delivery", "ops", "languages", "listen", "public_url"]


class TestAnyTree:
    """Any YAML tree under any section is accepted or refused as problems: never a crash or a traceback."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(section=st.sampled_from(_SECTIONS), tree=_TREE)
    def test_never_crashes(self, tmp_path: Path, section: str, tree: object) -> None:
        import json

        from ruamel.yaml import YAML

        path = tmp_path / "statusd.yaml"
        data = YAML(typ="safe").load(BASE.format(alerts=ALERTS, channels=CONSOLE, deadline="1h"))
        data[section] = tree
        # JSON is YAML: the whole file as one flow mapping, the section replaced by the tree.
        path.write_text(json.dumps(data, default=str), encoding="utf-8")
        try:
            config_module.load(path)
        except ConfigError as err:
            assert err.problems and all(str(p).startswith(str(path)) for p in err.problems)
