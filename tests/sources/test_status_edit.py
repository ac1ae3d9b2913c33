"""Editing status.yaml: the rest is kept, writes are atomic and locked, broken files are refused."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from statusd import loading
from statusd.config.load import Config
from statusd.errors import ConfigError, UserError
from statusd.model import Level, StatusEntry, Target
from statusd.sources.status import file as status_file
from statusd.sources.status.edit import set_entry

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent.parent / "data" / "status"
CONFIG = loading.load(DATA / "statusd.yaml")
PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 09:00 in Paris
OPEN = StatusEntry(Level.OPEN, by="bob", at=AT)

COMMENTED = """\
# Live status, edited by hand and by `statusd set`.
main:
    level: closed
    message:
        fr: "Fermeture : incendie"   # quoted on purpose
        en: Closed after a fire
    until: 2026-11-26 10:00        # local time
    services:
        wifi:
            level: limited
            message:
                fr: Wi-Fi en panne   # second floor

# the annexe, closed for the holidays
# (planned in September)
annexe:
    from: 2026-12-24 18:00
    until: '2026-12-27 10:00'
    level: closed
    message: {fr: 'Fermeture pour les fêtes', en: "Closed for the holidays"}

# end of file
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "status.yaml"
    path.write_text(COMMENTED, encoding="utf-8")
    return path


def annexe_block(text: str) -> str:
    return text[text.index("# the annexe"):]


class TestKeepsTheRest:
    """Everything but the target's own keys is kept byte for byte: comments, order, quoting."""

    def test_set_a_site(self, path: Path) -> None:
        set_entry(path, CONFIG, Target("main"), OPEN)
        assert path.read_text(encoding="utf-8") == (
            "# Live status, edited by hand and by `statusd set`.\n"
            "main:\n"
            "    level: open\n"
            "    by: bob\n"
            "    at: 2026-11-25T09:00:00+01:00\n"
            "    services:\n"
            "        wifi:\n"
            "            level: limited\n"
            "            message:\n"
            "                fr: Wi-Fi en panne   # second floor\n"
            "\n" + annexe_block(COMMENTED)
        )

    def test_add_a_service(self, path: Path) -> None:
        entry = StatusEntry(Level.CLOSED, {"fr": "Imprimante en panne", "en": "Printer broken"}, by="bob", at=AT)
        set_entry(path, CONFIG, Target("main", "printing"), entry)
        text = path.read_text(encoding="utf-8")
        assert text.startswith(COMMENTED[: COMMENTED.index("\n# the annexe")])
        assert annexe_block(text) == annexe_block(COMMENTED)
        assert (
            "                fr: Wi-Fi en panne   # second floor\n"
            "        printing:\n"
            "            level: closed\n"
            "            message:\n"
            "                fr: Imprimante en panne\n"
            "                en: Printer broken\n"
            "            by: bob\n"
            "            at: 2026-11-25T09:00:00+01:00\n"
            "\n# the annexe"
        ) in text

    def test_set_the_last_site(self, path: Path) -> None:
        entry = StatusEntry(Level.LIMITED, {"fr": "Horaires réduits"}, until=datetime(2026, 11, 26, 18, 0, tzinfo=PARIS), by="bob", at=AT)
        set_entry(path, CONFIG, Target("annexe"), entry)
        text = path.read_text(encoding="utf-8")
        assert text.startswith(COMMENTED[: COMMENTED.index("annexe:")])
        assert text.endswith(
            "annexe:\n"
            "    until: '2026-11-26 18:00'\n"  # the hand-written quotes are kept
            "    level: limited\n"
            "    message: Horaires réduits\n"
            "    by: bob\n"
            "    at: 2026-11-25T09:00:00+01:00\n"
            "\n# end of file\n"
        )

    def test_the_example_file(self, tmp_path: Path) -> None:
        path = tmp_path / "status.yaml"
        shutil.copy(DATA / "status.yaml", path)
        original = path.read_text(encoding="utf-8")
        set_entry(path, CONFIG, Target("main", "printing"), OPEN)
        text = path.read_text(encoding="utf-8")
        head, tail = original.split("annexe:\n")
        assert text.startswith(head.rstrip("\n"))
        assert text.endswith("annexe:\n" + tail)
        assert status_file.read(path, CONFIG)[Target("main", "printing")] == OPEN

    def test_a_site_keeps_its_services(self, path: Path) -> None:
        set_entry(path, CONFIG, Target("main"), OPEN)
        wanted = status_file.read(path, CONFIG)
        assert wanted[Target("main")] == OPEN
        assert wanted[Target("main", "wifi")] == StatusEntry(Level.LIMITED, {"fr": "Wi-Fi en panne"})


class TestWrites:
    """What is written reads back as the same entry, in the documented forms."""

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            (OPEN, "annexe:\n  level: open\n  by: bob\n  at: 2026-11-25T09:00:00+01:00\n"),
            (
                StatusEntry(Level.CLOSED, {"fr": "Fermé : fêtes"}, datetime(2026, 12, 24, 17, 0, tzinfo=UTC),
                            datetime(2026, 12, 27, 10, 0, 30, tzinfo=PARIS), "bob", AT),
                "annexe:\n  level: closed\n  message: 'Fermé : fêtes'\n  from: 2026-12-24 18:00\n"
                "  until: '2026-12-27 10:00:30'\n  by: bob\n  at: 2026-11-25T09:00:00+01:00\n",
            ),
            (
                StatusEntry(Level.EMERGENCY, {"sv": "Stängt", "en": "Closed", "fr": "Fermé"}),
                "annexe:\n  level: emergency\n  message:\n    fr: Fermé\n    en: Closed\n    sv: Stängt\n",
            ),
            (
                StatusEntry(Level.LIMITED, {"en": "Line 1\nLine 2"}, at=datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
                "annexe:\n  level: limited\n  message:\n    en: \"Line 1\\nLine 2\"\n  at: 2026-07-01T10:00:00+02:00\n",
            ),
        ],
        ids=["open", "planned-closure", "languages-in-config-order", "summer-time"],
    )
    def test_entry(self, tmp_path: Path, entry: StatusEntry, expected: str) -> None:
        path = tmp_path / "status.yaml"
        path.write_text("main: {level: open}\n", encoding="utf-8")
        set_entry(path, CONFIG, Target("annexe"), entry)
        assert path.read_text(encoding="utf-8") == "main: {level: open}\n" + expected
        assert status_file.read(path, CONFIG)[Target("annexe")] == entry

    def test_a_new_file_gets_a_header(self, tmp_path: Path) -> None:
        path = tmp_path / "status.yaml"
        set_entry(path, CONFIG, Target("main", "wifi"), OPEN)
        assert path.read_text(encoding="utf-8") == (
            "# Live status of each site and service. Flip it with `statusd set`, or edit it by hand.\n"
            "main:\n  services:\n    wifi:\n      level: open\n      by: bob\n      at: 2026-11-25T09:00:00+01:00\n"
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

    def test_through_a_symlink(self, tmp_path: Path, path: Path) -> None:
        link = tmp_path / "link.yaml"
        link.symlink_to(path)
        set_entry(link, CONFIG, Target("main"), OPEN)
        assert link.is_symlink()
        assert status_file.read(path, CONFIG)[Target("main")] == OPEN

    def test_no_temporary_file_is_left(self, path: Path) -> None:
        set_entry(path, CONFIG, Target("main"), OPEN)
        assert sorted(p.name for p in path.parent.iterdir()) == [".status.yaml.lock", "status.yaml"]


class TestKeepsOwnership:
    """The new file has the old one's mode and group, so colleagues can still edit it."""

    @pytest.mark.parametrize("mode", [0o640, 0o664, 0o600])
    def test_mode(self, path: Path, mode: int) -> None:
        path.chmod(mode)
        set_entry(path, CONFIG, Target("main"), OPEN)
        assert stat.S_IMODE(path.stat().st_mode) == mode

    def test_group(self, path: Path) -> None:
        # root may give any group; anyone else, one of their own.
        group = 4242 if os.geteuid() == 0 else os.getgroups()[-1]
        os.chown(path, -1, group)
        set_entry(path, CONFIG, Target("main"), OPEN)
        assert path.stat().st_gid == group


class TestRefuses:
    """A broken or unacceptable file is refused with where and why, and left untouched."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("main:\n  level: closed\n  services:\n  wifi: [\n", "status.yaml line 5 column 1 is broken ("),
            ("main:\n  level: closed\n\tuntil: x\n", "status.yaml line 3 column 1 is broken (found character '\\t'"),
            ("main:\n  level: closed\n  level: open\n", "status.yaml line 3 column 3 is broken (found duplicate key"),
            ("", "status.yaml holds no status (a truncated write?)"),
            ("# all open\n", "status.yaml holds no status"),
            ("- main\n", "status.yaml should be a mapping of site to status"),
            ("main: {level: open}\nannexe: {level: clossed}\n", "status.yaml would not be accepted (line 2, annexe.level: unknown level 'clossed'"),
        ],
    )
    def test_broken(self, path: Path, text: str, expected: str) -> None:
        path.write_text(text, encoding="utf-8")
        before = path.stat()
        with pytest.raises(UserError) as caught:
            set_entry(path, CONFIG, Target("main"), OPEN)
        assert f"{path.parent}/{expected}" in str(caught.value)
        assert str(caught.value).endswith("nothing was changed") or "delete it to start afresh" in str(caught.value)
        assert path.read_text(encoding="utf-8") == text
        assert path.stat().st_mtime_ns == before.st_mtime_ns

    def test_replacing_the_bad_entry_is_allowed(self, path: Path) -> None:
        """The command fixes a mistyped entry rather than refusing because of it."""
        path.write_text("main: {level: clossed}\n", encoding="utf-8")
        set_entry(path, CONFIG, Target("main"), OPEN)
        assert status_file.read(path, CONFIG) == {Target("main"): OPEN}

    @pytest.mark.parametrize(
        ("target", "expected"),
        [(Target("mian"), "unknown target 'mian'"), (Target("main", "wfi"), "unknown target 'main/wfi'")],
    )
    def test_unknown_target(self, path: Path, target: Target, expected: str) -> None:
        with pytest.raises(UserError, match=expected):
            set_entry(path, CONFIG, target, OPEN)
        assert path.read_text(encoding="utf-8") == COMMENTED

    def test_a_directory(self, tmp_path: Path) -> None:
        (tmp_path / "status.yaml").mkdir()
        with pytest.raises(UserError, match="is a directory, not a file"):
            set_entry(tmp_path / "status.yaml", CONFIG, Target("main"), OPEN)

    def test_an_unwritable_directory(self, tmp_path: Path) -> None:
        with pytest.raises(UserError, match="nothing was changed"):
            set_entry(tmp_path / "missing" / "status.yaml", CONFIG, Target("main"), OPEN)


class TestAtomic:
    """A reader never sees a half-written file, however many writes happen."""

    def test_reader_sees_only_whole_documents(self, path: Path) -> None:
        stop = threading.Event()
        seen: list[int] = []
        failures: list[str] = []

        def reader() -> None:
            while not stop.is_set():
                try:
                    seen.append(len(status_file.read(path, CONFIG)))
                except ConfigError as err:
                    failures.append(str(err))

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for number in range(200):
                level = (Level.CLOSED, Level.LIMITED)[number % 2]
                entry = StatusEntry(level, {"fr": f"Message {number} " + "x" * (number * 37 % 1900)}, by="bob", at=AT)
                set_entry(path, CONFIG, Target("main", ("wifi", "printing")[number % 2]), entry)
        finally:
            stop.set()
            thread.join()
        assert failures == []
        assert len(seen) > 50  # the reader really did read while writes happened
        assert status_file.read(path, CONFIG)[Target("main", "printing")].message["fr"].startswith("Message 199 ")


SERVICES = [f"s{number}" for number in range(8)]


def many_services(tmp_path: Path) -> Config:
    path = tmp_path / "statusd.yaml"
    services = ", ".join(f"{name}: Service {name}" for name in SERVICES)
    path.write_text(
        "public_url: http://127.0.0.1:8080\nlanguages: [fr, en]\n"
        f"sites:\n  main: {{name: Main, timezone: Europe/Paris, services: {{{services}}}}}\n"
        "channels:\n  console: {type: console}\n",
        encoding="utf-8",
    )
    return loading.load(path)


def write_service(config_path: str, status_path: str, service: str, rounds: int) -> None:
    config = loading.load(Path(config_path))
    for number in range(rounds):
        entry = StatusEntry(Level.LIMITED, {"fr": f"{service} round {number}"}, by=service, at=AT)
        set_entry(Path(status_path), config, Target("main", service), entry)


class TestConcurrentWriters:
    """Several `statusd set` at once each land: no update is lost."""

    def test_processes(self, tmp_path: Path) -> None:
        config = many_services(tmp_path)
        path = tmp_path / "status.yaml"
        path.write_text("# shared by everyone at the desk\nmain:\n  level: open\n", encoding="utf-8")
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(target=write_service, args=(str(config.path), str(path), service, 10))
            for service in SERVICES
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert [worker.exitcode for worker in workers] == [0] * len(SERVICES)
        wanted = status_file.read(path, config)
        assert {str(t) for t in wanted} == {"main", *(f"main/{s}" for s in SERVICES)}
        assert all(wanted[Target("main", s)].message == {"fr": f"{s} round 9"} for s in SERVICES)
        assert path.read_text(encoding="utf-8").startswith("# shared by everyone at the desk\nmain:\n  level: open\n")

    def test_waits_for_the_lock(self, path: Path) -> None:
        lock = os.open(path.parent / ".status.yaml.lock", os.O_RDONLY | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)
        writer = threading.Thread(target=set_entry, args=(path, CONFIG, Target("main"), OPEN))
        writer.start()
        time.sleep(0.3)
        try:
            assert writer.is_alive()
            assert path.read_text(encoding="utf-8") == COMMENTED
        finally:
            os.close(lock)
        writer.join(timeout=10)
        assert status_file.read(path, CONFIG)[Target("main")] == OPEN
