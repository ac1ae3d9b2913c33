"""Hostile status files, `statusd set` arguments and building-system pushes: refused in one sentence, nothing leaks."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from statusd import files
from statusd import loading as config_module
from statusd.errors import ConfigError, UserError
from statusd.intake import Intake
from statusd.model import Level, StatusEntry, Target
from statusd.sensors.state import Sensors
from statusd.sources.readings import StatusReading
from statusd.sources.status import bounds
from statusd.sources.status import file as status_file
from statusd.sources.status.edit import set_entry
from statusd.sources.status.lock import LockBusy, held, locked
from statusd.sources.status.text import bad_char
from statusd.sources.status.watch import StatusWatch

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent.parent / "data" / "status"
CONFIG = config_module.load(DATA / "statusd.yaml")
AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SECRET = "hunter2-planted-secret-0a1b2c"


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        status_file.parse(text, "status.yaml", CONFIG)
    return str(caught.value)


class TestHostileValues:
    """Each hostile value is refused with its line and field, quoting no more than a short snippet."""

    @pytest.mark.parametrize(("text", "expected"), [
        ('main:\n  level: closed\n  message: "x \\ud800"\n', "status.yaml:3: main.message: holds half of a character (U+D800"),
        ('main:\n  message: {en: "\\ud83d\\ude00"}\n', "status.yaml:2: main.message.en: holds half of a character"),
        ('main:\n  message: "a\\x1b]0;title\\x07"\n', "status.yaml:2: main.message: holds an invisible control character (U+001B"),
        ('main:\n  message: "line\\rBEGIN:VEVENT"\n', "status.yaml:2: main.message: holds an invisible control character (U+000D"),
        ('main:\n  message: "x\\x85y"\n', "status.yaml:2: main.message: holds an invisible control character (U+0085"),
        ('"ma\\x00in": {level: closed}\n', "status.yaml:1: a key holds an invisible control character (U+0000"),
        ("main:\n  level: 0x" + "f" * 5000 + "\n", "status.yaml:2: main.level: is a number far too large"),
        ("? 0x" + "f" * 5000 + "\n: {level: closed}\n", "status.yaml:1: a key is a number far too large"),
        ("main:\n  message: " + "x" * 2001 + "\n", "status.yaml:2: main.message: is 2,001 characters long; keep a message under 2,000"),
        ("main: " + "[" * 50 + "]" * 50 + "\n", "status.yaml:1: main"),
        ("main: " + "[" * 5000 + "]" * 5000 + "\n", "status.yaml: is nested too deeply"),
        ("main:\n  level: !!binary aGVsbG8=\n", "status.yaml:2: main.level: is a YAML bytes"),
        ("main: {level: closed}\nmain: {level: open}\n", 'status.yaml:2:1: invalid YAML: found duplicate key "main"'),
        ("".join(f"k{n}: {n}\n" for n in range(20_001)), "status.yaml: holds over 20,000 values"),
    ])
    def test_refused(self, text: str, expected: str) -> None:
        message = refusal(text)
        assert message.startswith(expected), message
        assert len(message) < 2000

    @pytest.mark.parametrize("text", [
        f"API_TOKEN={SECRET}\n",
        f"password: {SECRET}\n",
        f"main:\n  level: {SECRET}\n  message: [{SECRET}]\n  by: [{SECRET}]\n",
        f"main: {{level: closed}}\nmain: {{level: '{SECRET}'}}\n",
        f"main:\n  until: {SECRET}\n",
        f"- {SECRET}\n- {SECRET}\n",
        f"main: {SECRET}\n",
        f"'{SECRET}': \n",
    ])
    def test_file_contents_never_echoed(self, text: str) -> None:
        assert SECRET[:25] not in refusal(text)

    def test_an_alias_bomb_is_bounded(self) -> None:
        lines = ["a0: &a0 [" + ", ".join(["x"] * 30) + "]"]
        lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 30) + "]" for n in range(1, 6)]
        began = time.monotonic()
        assert "holds over 20,000 values" in refusal("\n".join(lines))
        assert time.monotonic() - began < 5  # bounded, not 10^9 values


class TestTheFileItself:
    """status.yaml must be a plain file in its own directory, under the size limit."""

    def test_a_fifo(self, tmp_path: Path) -> None:
        os.mkfifo(tmp_path / "status.yaml")
        with pytest.raises(ConfigError, match="is a named pipe \\(FIFO\\), not a file"):
            bounds.read_text(tmp_path / "status.yaml")

    def test_a_symlink_out_of_its_directory(self, tmp_path: Path) -> None:
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "token").write_text(f"password: {SECRET}\n")
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "status.yaml").symlink_to(tmp_path / "creds" / "token")
        with pytest.raises(ConfigError, match="is a symbolic link out of its directory") as caught:
            bounds.read_text(tmp_path / "conf" / "status.yaml")
        assert SECRET not in str(caught.value)
        with pytest.raises(UserError, match="symbolic link out of its directory"):
            set_entry(tmp_path / "conf" / "status.yaml", CONFIG, Target("main"), StatusEntry(by="bob", at=AT))
        assert (tmp_path / "creds" / "token").read_text() == f"password: {SECRET}\n"

    def test_a_symlink_to_dev_zero(self, tmp_path: Path) -> None:
        (tmp_path / "status.yaml").symlink_to("/dev/zero")
        with pytest.raises(ConfigError, match="symbolic link out of its directory"):
            bounds.read_text(tmp_path / "status.yaml")

    def test_a_symlink_beside_it_is_followed(self, tmp_path: Path) -> None:
        (tmp_path / "live.yaml").write_text("main: {level: closed, message: Fermé}\n")
        (tmp_path / "status.yaml").symlink_to("live.yaml")
        assert status_file.read(tmp_path / "status.yaml", CONFIG)[Target("main")].level is Level.CLOSED

    def test_over_the_size_limit(self, tmp_path: Path) -> None:
        with (tmp_path / "status.yaml").open("wb") as out:
            out.truncate(50 * 1024 * 1024)
        with pytest.raises(ConfigError, match="is 52,428,800 bytes; a status file is at most 262,144"):
            bounds.read_text(tmp_path / "status.yaml")

    def test_not_utf8_quotes_nothing(self, tmp_path: Path) -> None:
        (tmp_path / "status.yaml").write_bytes(SECRET.encode() + b"\xff\xfe")
        with pytest.raises(ConfigError) as caught:
            bounds.read_text(tmp_path / "status.yaml")
        assert "not UTF-8 (byte 30)" in str(caught.value) and SECRET not in str(caught.value)


class TestSizeLimit:
    """The size limit is the config's `status_max_bytes`, for the reader and for `statusd set` alike."""

    def test_configured_limit(self, tmp_path: Path) -> None:
        (tmp_path / "statusd.yaml").write_text((DATA / "statusd.yaml").read_text() + "status_max_bytes: 2048\n")
        config = config_module.load(tmp_path / "statusd.yaml")
        assert config.status_max_bytes == 2048
        (tmp_path / "status.yaml").write_text("main: {level: open}\n" + "# x\n" * 1000)
        with pytest.raises(ConfigError, match="is 4,020 bytes; a status file is at most 2,048"):
            status_file.read(tmp_path / "status.yaml", config)
        (tmp_path / "status.yaml").write_text("main: {level: open}\n" + "# x\n" * 400)
        with pytest.raises(UserError, match="would grow past 2,048 bytes"):
            set_entry(tmp_path / "status.yaml", config, Target("main"),
                      StatusEntry(Level.CLOSED, {"fr": "x" * 1500}, by="bob", at=AT))

    def test_default_limit(self) -> None:
        assert CONFIG.status_max_bytes == 256 * 1024


class TestTimes:
    """A local time the clocks skip is refused with the nearest valid times; a repeated one takes the first."""

    def test_a_gap_in_the_file(self) -> None:
        message = refusal("main:\n  level: closed\n  message: Travaux\n  from: 2027-03-28 02:30\n")
        assert message == ('status.yaml:4: main.from: 2027-03-28 02:30 does not exist in Europe/Paris (the clocks '
                           'skip it); the nearest valid times are "2027-03-28 01:59" and "2027-03-28 03:00"')

    def test_a_fold_takes_the_first(self) -> None:
        text = "main:\n  level: closed\n  message: Travaux\n  from: '2027-10-31 02:30'\n  until: 2027-11-01 10:00\n"
        entry = status_file.parse(text, "status.yaml", CONFIG)[Target("main")]
        assert entry.starts is not None and entry.starts.utcoffset() is not None
        assert entry.starts.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
        assert status_file.ambiguous(entry.starts)

    async def test_the_daemon_says_which_was_taken(self, tmp_path: Path) -> None:
        path = tmp_path / "status.yaml"
        path.write_text("main:\n  level: closed\n  message: Travaux\n  from: '2027-10-31 02:30'\n")
        config = dataclasses.replace(CONFIG, status_file=path)
        watch = StatusWatch(config, lambda wanted: 300.0, dict)
        with capture_logs() as logs:
            await watch.load()
        (said,) = [e for e in logs if e["event"] == "status_time_ambiguous"]
        assert (said["target"], said["field"], said["taken"]) == ("main", "from", "2027-10-31T02:30:00+02:00")
        assert watch.wanted is not None and watch.wanted[Target("main")].level is Level.CLOSED


class TestAtomicWrites:
    """A failed write leaves no temporary file; leftovers of killed writers are removed."""

    @pytest.mark.parametrize("failing", ["replace", "fsync"])
    def test_failure_removes_the_temporary_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                failing: str) -> None:
        def broken(*args: Any) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, failing, broken)
        with pytest.raises(OSError):
            files.write_atomic(tmp_path / "status.json", b"{}")
        monkeypatch.undo()
        assert list(tmp_path.iterdir()) == []

    def test_set_says_so_and_leaves_nothing(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "status.yaml"
        path.write_text("main: {level: open}\n")
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        with pytest.raises(UserError, match="No space left on device"):
            set_entry(path, CONFIG, Target("main"), StatusEntry(Level.LIMITED, by="bob", at=AT))
        monkeypatch.undo()
        assert sorted(p.name for p in tmp_path.iterdir()) == [".status.yaml.lock", "status.yaml"]

    def test_leftovers_removed(self, tmp_path: Path) -> None:
        for name in (".status.yaml.x1.tmp", ".status.yaml.x2.tmp", ".other.yaml.x3.tmp"):
            (tmp_path / name).write_text("half")
        assert files.remove_leftovers(tmp_path / "status.yaml") == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == [".other.yaml.x3.tmp"]


class TestLockIsBounded:
    """Nobody waits for the status file's lock without a bound."""

    def test_a_busy_lock_is_refused_after_the_wait(self, tmp_path: Path) -> None:
        path = tmp_path / "status.yaml"
        fd = os.open(tmp_path / ".status.yaml.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            began = time.monotonic()
            with pytest.raises(LockBusy, match="is locked by another `statusd set`, `undo` or the daemon"):
                with locked(path, timeout=0.2):
                    pass
            assert time.monotonic() - began < 2
            with pytest.raises(LockBusy):
                set_entry(path, CONFIG, Target("main"), StatusEntry(by="bob", at=AT), wait=0.1)
        finally:
            os.close(fd)


def reading(reason: str) -> StatusReading:
    return StatusReading("main", None, Level.EMERGENCY, reason, AT, "panel")


class TestPushes:
    """A building system's reason is published only when it is valid text; the status counts anyway."""

    @pytest.mark.parametrize("reason", ["Fire \ud800 alarm", "Fire\x1b[2J", "x" * 2001])
    def test_a_bad_reason_is_left_out(self, reason: str) -> None:
        submitted: list[tuple[Target, StatusEntry]] = []
        intake = Intake(CONFIG, Sensors(CONFIG, CONFIG.rules), lambda: {},
                        lambda target, entry: submitted.append((target, entry)))
        intake.accept([reading(reason)], AT)
        ((target, entry),) = submitted
        assert (target, entry.level, dict(entry.message)) == (Target("main"), Level.EMERGENCY, {})

    def test_a_good_reason_is_kept(self) -> None:
        submitted: list[tuple[Target, StatusEntry]] = []
        intake = Intake(CONFIG, Sensors(CONFIG, CONFIG.rules), lambda: {},
                        lambda target, entry: submitted.append((target, entry)))
        intake.accept([reading("Fire alarm: evacuate.")], AT)
        assert dict(submitted[0][1].message) == {"fr": "Fire alarm: evacuate."}


TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["main", "annexe", "level", "message", "services", "wifi", "fr", "en", "from", "until",
                         "by", "at"]) | st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


def accepted_or_refused(text: str) -> None:
    try:
        wanted = status_file.parse(text, "status.yaml", CONFIG)
    except ConfigError as err:
        assert err.problems and all(p.text and "\n" not in p.text for p in err.problems)
        return
    for entry in wanted.values():
        for message in entry.message.values():
            assert bad_char(message) is None and len(message) <= 2000


class TestProperties:
    """Over arbitrary text and YAML trees: a Wanted with valid texts, or a ConfigError; never anything else."""

    @given(st.text())
    @settings(max_examples=300)
    def test_arbitrary_text(self, text: str) -> None:
        accepted_or_refused(text)

    @given(TREES)
    @settings(max_examples=300)
    def test_arbitrary_trees(self, tree: Any) -> None:
        accepted_or_refused(json.dumps(tree))  # JSON is YAML; its \\u escapes carry surrogates and controls

    @given(st.text(min_size=1, max_size=60))
    @settings(max_examples=60)
    def test_set_writes_only_what_reads_back(self, tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
        path = tmp_path_factory.mktemp("set") / "status.yaml"
        path.write_text("main: {level: open}\n")
        entry = StatusEntry(Level.CLOSED, {"fr": text}, by="bob", at=AT)
        try:
            set_entry(path, CONFIG, Target("main"), entry)
        except UserError:
            assert status_file.read(path, CONFIG)[Target("main")].level is Level.OPEN
            return
        assert bad_char(text) is None
        assert status_file.read(path, CONFIG)[Target("main")].message == {"fr": text}


class TestLockForTheLoop:
    """The daemon's lock never blocks the loop, and a lock file that cannot be made does not stop it."""

    async def test_busy_then_free(self, tmp_path: Path) -> None:
        fd = os.open(tmp_path / ".status.yaml.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.get_running_loop().create_task(tick())
        try:
            async with held(tmp_path / "status.yaml", wait=0.3) as got:
                assert got is False
            assert ticks >= 10  # the loop ran all along
        finally:
            ticker.cancel()
            os.close(fd)
        async with held(tmp_path / "status.yaml", wait=0.3) as got:
            assert got is True

    async def test_unmakeable_lock_file(self, tmp_path: Path) -> None:
        async with held(tmp_path / "missing" / "status.yaml", wait=0.1) as got:
            assert got is False
