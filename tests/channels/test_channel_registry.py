"""The channel registry loads a channel's module only when asked, and `statusd set` never asks."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from statusd.channels import CHANNELS, OPTIONS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent.parent
CLIENTS = ("aiohttp", "mastodon", "tweepy", "requests", "apprise", "jinja2")

# `statusd set` in a fresh interpreter, then every module it imported, as JSON on the last line.
PROBE = """
import json, sys
from statusd.commands import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _fields(cls: type) -> list[tuple[str, str, object]]:
    return [(f.name, str(f.type), f.default) for f in dataclasses.fields(cls)]


class TestOptionsMatchTheChannels:
    """The options config checks are, field for field, the ones each channel class reads."""

    def test_every_registered_type_has_its_options(self) -> None:
        assert list(OPTIONS) == list(CHANNELS)

    @pytest.mark.parametrize("kind", list(OPTIONS))
    def test_same_fields_types_and_defaults(self, kind: str) -> None:
        channel_options = typing.cast(type, vars(CHANNELS[kind])["Options"])  # a class's own attribute
        assert _fields(channel_options) == _fields(OPTIONS[kind])
        assert channel_options.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert channel_options.__doc__ == OPTIONS[kind].__doc__

    def test_an_unknown_type_is_not_registered(self) -> None:
        with pytest.raises(KeyError):
            CHANNELS["fax"]
        assert "fax" not in CHANNELS


class TestSetImportsNoClient:
    """A local `statusd set` with a channel of every type imports no platform client and builds none."""

    def test_modules_after_set(self, tmp_path: Path) -> None:
        sys.path.insert(0, str(REPO / "bench"))
        try:
            import command  # bench/command.py: one channel of each type, as the full example has them
        finally:
            sys.path.remove(str(REPO / "bench"))
        config = command.write(tmp_path, len(command.KINDS), 3)
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "--config", str(config), "--state-dir", str(tmp_path / "state"),
             "set", "main", "closed", *command.MESSAGE],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", command.SECRET_ENV: "a-real-secret-7f3e", "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        said = json.loads(done.stdout.splitlines()[-1])
        assert said["code"] == 0
        # The channels are not read (config/scoped.py): their names are counted, not which are on.
        assert "main: closed" in done.stdout and f"on its {len(command.KINDS)} configured channel(s)" in done.stdout
        modules = set(said["modules"])
        assert sorted(m for m in modules if m.split(".")[0] in CLIENTS) == []
        assert sorted(m for m in modules if m.startswith("statusd.channels.") and m != "statusd.channels.options") == []
        assert not modules & {"statusd.compose", "statusd.outbox.senders", "statusd.outbox.store", "statusd.web",
                              "statusd.config.channels", "statusd.config.feed_section"}


class TestTheDaemonImportsOnlyWhatItUses:
    """The daemon alone (SQLite) with no X, MQTT or webpush imports none of their clients, nor the
    cluster's: tweepy, requests, psycopg, aiomqtt and pywebpush were 18 MB of an idle daemon's 89."""

    def test_modules_of_the_daemon_alone(self) -> None:
        probe = ("import json, sys; import statusd.app, statusd.commands.running; "
                 "print(json.dumps(sorted(sys.modules)))")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                              check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
        modules = set(json.loads(done.stdout.splitlines()[-1]))
        unused = ("tweepy", "requests", "mastodon", "psycopg", "psycopg_pool", "aiomqtt", "paho", "pywebpush",
                  "py_vapid", "statusd.cluster.node", "statusd.sources.feeds.mqtt")
        assert sorted(m for m in modules if any(m == u or m.startswith(u + ".") for u in unused)) == []
        assert "statusd.app" in modules and "aiohttp" in modules  # not vacuous: the daemon itself is there
