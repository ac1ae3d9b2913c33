"""`statusd set` beside a running daemon hands the change over the status socket (commands/handoff.py).

What the desk sees must not depend on who made the change: each command line is run
against a daemon and, in a copy of the same files, with no daemon, and the exit
code, the output and the status file must be the same; the daemon's log says the
change was really handed (else the local fallback would make every comparison pass).
A daemon that cannot answer in time, or dies after the go-ahead, costs a local
change, never a second one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from statusd import loading
from statusd.commands import handoff
from statusd.sources.status import nudge
from tests.conftest import WriteConfig
from tests.support.daemon import Daemon
from tests.support.fakes.webhook import WebhookReceiver
from tests.support.waiting import until
from tests.test_end_to_end import SECRET, hook_channels

pytestmark = pytest.mark.e2e

# In order: each line changes (or refuses to change) both copies alike.
LINES: tuple[tuple[str | bytes, ...], ...] = (
    ("set", "main", "closed", "-m", "fr:Fermé : dégât des eaux.", "-m", "en:Closed: water damage.",
     "--until", "2031-11-26 10:00"),
    ("set", "main/wifi", "limited", "-m", "en:Slow today.", "-m", "fr:Lent aujourd'hui."),
    ("set", "nowhere", "closed"),
    ("set", "main/nothing", "limited"),
    ("set", "main", "shut"),
    ("set", "annexe", "closed", "--from", "2031-12-01 09:00", "--until", "2031-11-01 09:00"),
    ("set", "annexe", "closed", "--until", "tomorrow-ish"),
    ("set", "annexe", "limited", "-m", "xx:Hmm."),
    ("set", "annexe", "limited", "-m", "en:\x1b]0;owned\x07\x1b[2J red alert", "-m", "fr:\u202eecnalA"),
    ("set", "annexe", "closed", "-m", b"en:caf\xe9 \xff closed", "-m", "fr:Fermé."),
    ("set", "main", "open"),
)
_AT = re.compile(r"^(\s*at: ).*$", re.MULTILINE)


def _run(config: Path, state: Path, line: tuple[str | bytes, ...], **extra: object) -> tuple[int, str, str]:
    """`statusd` with `line`, as desk staff run it; exit code, stdout and stderr (undecodable bytes kept)."""
    done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(config), "--state-dir", str(state),
                           *line], capture_output=True, timeout=60, cwd=config.parent,
                          env={**os.environ, "HOOK_SECRET": SECRET}, check=False, **extra)  # type: ignore[call-overload]
    return (done.returncode, done.stdout.decode("utf-8", "surrogateescape"),
            done.stderr.decode("utf-8", "surrogateescape"))


def _said(outcome: tuple[int, str, str], directory: Path) -> tuple[int, str, str]:
    code, out, err = outcome
    return code, out.replace(str(directory), "<dir>"), err.replace(str(directory), "<dir>")


def _levels(hook: WebhookReceiver) -> list[str]:
    """The levels the receiver holds for the site main itself, in order."""
    return [m["level"] for m in hook.received if m["site"] == "main" and m["service"] is None]


def _handed(daemon: Daemon) -> int:
    """How many changes the daemon made (and answered) for a command."""
    return daemon.logs().count('"status_set_made"')


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    await hook.start()
    yield hook
    await hook.stop()


Beside = tuple[Path, Path, Daemon]


@pytest.fixture
def beside(write_config: WriteConfig, tmp_path: Path, receiver: WebhookReceiver) -> Iterator[Beside]:
    """The same files twice, one copy with a daemon running, one for the command alone: both configs, the daemon."""
    config = write_config(hook_channels({"hook-en": ("en", receiver.url)}), status="main:\n  level: open\n")
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("statusd.yaml", "status.yaml"):
        shutil.copy(tmp_path / name, alone / name)
    daemon = Daemon(config, tmp_path / "state", env={"HOOK_SECRET": SECRET}).start()
    yield config, alone / "statusd.yaml", daemon
    daemon.terminate()


class TestSameAsLocal:
    async def test_every_line_says_and_writes_what_the_command_alone_does(
        self, beside: Beside, tmp_path: Path, receiver: WebhookReceiver
    ) -> None:
        config, alone, daemon = beside
        for count, line in enumerate(LINES, 1):
            by_daemon = await asyncio.to_thread(_run, config, tmp_path / "state", line)
            by_itself = await asyncio.to_thread(_run, alone, alone.parent / "state", line)
            assert _handed(daemon) == count, (line, daemon.logs()[-2000:])
            assert _said(by_daemon, tmp_path) == _said(by_itself, alone.parent), line
            assert _AT.sub(r"\1<t>", config.with_name("status.yaml").read_text("utf-8")) == \
                   _AT.sub(r"\1<t>", alone.with_name("status.yaml").read_text("utf-8")), line
        assert not list(config.parent.glob(".status.yaml.*.tmp"))  # no write left half done
        # What the receiver holds: the closure, then the reopening, each once.
        await until(lambda: _levels(receiver)[-1:] == ["open"], "the reopening posted", timeout=10)
        await asyncio.sleep(0.5)
        assert _levels(receiver) == ["closed", "open"], receiver.received

    async def test_the_command_imports_no_yaml_reader_nor_the_config(
        self, beside: Beside, tmp_path: Path, receiver: WebhookReceiver
    ) -> None:
        config, _, daemon = beside
        probe = (f"import sys\nfrom statusd.commands import main\n"
                 f"code = main(['--config', {str(config)!r}, '--state-dir', {str(tmp_path / 'state')!r}, "
                 f"'set', 'main', 'closed', '-m', 'en:Closed.'])\n"
                 "print(code, sorted(m for m in ('yaml', 'ruamel', 'statusd.config.load', 'sqlite3', "
                 "'statusd.sources.status.edit', 'asyncio', 'structlog') if m in sys.modules))")
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", probe], capture_output=True,
                                       text=True, timeout=60, cwd=config.parent, check=False)
        assert done.stdout.strip().endswith("0 []"), (done.stdout, done.stderr)
        assert _handed(daemon) == 1


class TestNotHanded:
    async def test_another_config_is_made_by_the_command_itself(
        self, beside: Beside, tmp_path: Path, receiver: WebhookReceiver
    ) -> None:
        config, alone, daemon = beside
        code, out, err = await asyncio.to_thread(_run, alone, tmp_path / "state",
                                                ("set", "main", "closed", "-m", "en:Closed."))
        assert code == 0, err
        assert str(alone.with_name("status.yaml")) in out
        assert "level: closed" in alone.with_name("status.yaml").read_text("utf-8")
        assert "level: open" in config.with_name("status.yaml").read_text("utf-8")
        assert _handed(daemon) == 0

    async def test_a_stopped_daemon_costs_a_wait_and_makes_nothing_twice(
        self, beside: Beside, tmp_path: Path, receiver: WebhookReceiver
    ) -> None:
        config, _, daemon = beside
        assert daemon.proc is not None
        # Stopped once its start-up upkeep (the first prune, its checkpoint) is done: stopped in
        # the middle of a write it would hold the store's lock, and `set` rightly says it cannot
        # record (exit 74, tests/faults: a store locked by another process). Here it is only slow.
        await _settled(tmp_path / "state" / "statusd.db")
        daemon.proc.send_signal(signal.SIGSTOP)
        try:
            code, _, err = await asyncio.to_thread(_run, config, tmp_path / "state",
                                                   ("set", "main", "closed", "-m", "en:Closed."))
            written = config.with_name("status.yaml").read_bytes()
            # A second person's change, made while the first request still waits in the socket.
            await asyncio.to_thread(_run, config, tmp_path / "state", ("set", "main", "limited"))
            newer = config.with_name("status.yaml").read_bytes()
            # A request whose command gave up but lives on (this process).
            _give_up(tmp_path / "state", config, "closed")
        finally:
            daemon.proc.send_signal(signal.SIGCONT)
        assert code == 0, err
        assert b"level: closed" in written and b"level: limited" in newer
        await until(lambda: _levels(receiver)[-1:] == ["limited"], "the newer change posted", timeout=10)
        await asyncio.sleep(1.5)  # the daemon answers the requests left in its socket: nobody writes them
        assert config.with_name("status.yaml").read_bytes() == newer
        assert '"status_entry_written"' not in daemon.logs()  # the daemon writes nothing for a command
        levels = _levels(receiver)
        assert levels[-1] == "limited" and levels.count("limited") == 1 and levels.count("closed") <= 1


async def _settled(store: Path, quiet: float = 1.0, timeout: float = 10.0) -> None:
    """Once the store's files have not changed for `quiet` seconds (the daemon writes nothing)."""
    def look() -> list[tuple[int, int]]:
        return [(f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else (0, 0)
                for f in (store, store.with_name(store.name + "-wal"))]

    deadline, last, since = time.monotonic() + timeout, look(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if (now := look()) != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"the daemon kept writing to {store} for {timeout:g} s")


def _give_up(state: Path, config: Path, level: str) -> None:
    """Send a well-formed request as the command does, and leave before the answer, staying alive."""
    fields = {"config": os.path.realpath(config), "config_digest": nudge.digest(config.read_text("utf-8")),
              "status_digest": nudge.digest(config.with_name("status.yaml").read_text("utf-8")),
              "target": "main", "level": level, "message": ["en:Old news."], "starts": None, "until": None,
              "by": "someone", "at": time.time()}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(state / nudge.NAME))
        sock.sendall(b"set " + json.dumps(fields).encode("ascii") + b"\n")


NOBODY, GROUP = 65534, 41234


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory other users may enter (pytest's own is the owner's alone), removed after."""
    found = Path(f"/tmp/statusd-handoff-{os.getpid()}-{tmp_path.name}")
    found.mkdir()
    os.chmod(found, 0o755)  # noqa: S103 (others must enter it: that is the test)
    yield found
    shutil.rmtree(found, ignore_errors=True)


def _as_nobody(config: Path, groups: list[int], line: tuple[str, ...]) -> tuple[int, str, str]:
    """The command run by uid 65534 in `groups`: it may read everything (CAP_DAC_READ_SEARCH: the
    interpreter lives under /root), and write only where the permission bits let it."""
    who = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
           f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
           "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    done = subprocess.run([*who, sys.executable, "-m", "statusd", "--config", str(config), "--state-dir",
                           str(config.parent / "state"), *line], capture_output=True, text=True, timeout=60,
                          cwd=config.parent, env={**os.environ, "HOME": "/", "PYTHONDONTWRITEBYTECODE": "1"},
                          check=False)
    return done.returncode, done.stdout, done.stderr


class TestWhoMayAsk:
    """The daemon only makes the change; the person writes it, with their own rights, or is refused as before."""

    @pytest.mark.parametrize(("dir_mode", "file_mode", "groups", "may"), [
        (0o755, 0o644, [], False),  # may read, may not write
        (0o775, 0o664, [GROUP], True),  # the status file's group, as README's install sets it up
        (0o775, 0o664, [], False),  # not in the group
        (0o775, 0o644, [GROUP], True),  # may replace the file (by rename), as a local `set` does
        (0o757, 0o646, [], True),  # anybody may
        (0o1777, 0o666, [], False),  # may create files there, but not rename over root's
    ], ids=["reader", "in-the-group", "outside-the-group", "group-may-replace-the-file", "world-writable",
            "sticky"])
    async def test_the_kernel_decides(self, write_config: WriteConfig, shared_dir: Path, dir_mode: int,
                                      file_mode: int, groups: list[int], may: bool) -> None:
        # The config where only its owner may write (config/trust.py), the status file where staff may.
        config = shared_dir / "statusd.yaml"
        config.write_text(write_config().read_text("utf-8") + "status_file: desk/status.yaml\n", encoding="utf-8")
        status = shared_dir / "desk" / "status.yaml"
        status.parent.mkdir()
        status.write_text("main:\n  level: open\n", encoding="utf-8")
        daemon = Daemon(config, shared_dir / "state").start()
        try:
            os.chown(status.parent, 0, GROUP)
            os.chmod(status.parent, dir_mode)
            os.chown(status, 0, GROUP)
            os.chmod(status, file_mode)
            code, out, err = await asyncio.to_thread(_as_nobody, config, groups,
                                                     ("set", "main", "closed", "-m", "fr:Fermé."))
            assert (code == 0) == may, (code, out, err)
            assert ("level: closed" in status.read_text("utf-8")) == may
            assert _handed(daemon) >= 1  # the daemon made it (and, for those who may not, nobody wrote it)
            assert '"status_entry_written"' not in daemon.logs()
            if may:
                assert os.stat(status).st_uid == NOBODY  # written by the person, not by the daemon
            else:
                assert "nothing was changed" in err or "permission denied" in err, err
        finally:
            daemon.terminate()


class _Answering:
    """A status socket served by this process (root): reads one request, answers `answer(request)`."""

    def __init__(self, state: Path, answer: Callable[[dict[str, Any]], bytes]) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(state / nudge.NAME))
        self.server.listen()
        self.answer = answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        peer, _ = self.server.accept()
        with peer:
            line = peer.makefile("rb").readline()
            if line.startswith(b"set "):
                peer.sendall(self.answer(json.loads(line.removeprefix(b"set "))))
        self.server.close()


def _made_by_this_process(request: dict[str, Any], config: Path, state: Path) -> dict[str, Any]:
    """What the daemon answers: the command's code run up to the write (desk/handoff.py's run)."""
    from statusd.desk.handoff import Handoff

    loaded = loading.load(config)
    found = Handoff(lambda: loaded, state)._make(loaded, request)
    assert found is not None
    return found


class TestMadeThenChanged:
    def test_a_change_made_from_an_older_text_is_made_again_by_the_command(
        self, write_config: WriteConfig, tmp_path: Path
    ) -> None:
        config = write_config()
        status = config.with_name("status.yaml")

        def answer(request: dict[str, Any]) -> bytes:
            made = _made_by_this_process(request, config, tmp_path / "state")
            # A colleague's change lands between the daemon's making and the command's writing.
            status.write_text("main:\n  level: limited\nannexe:\n  level: closed\n  message: {fr: Fermé.}\n",
                              encoding="utf-8")
            return json.dumps(made).encode("ascii") + b"\n"

        served = _Answering(tmp_path / "state", answer)
        code, _, err = _run(config, tmp_path / "state", ("set", "main", "closed", "-m", "fr:Fermé."))
        served.thread.join(10)
        assert code == 0, err
        text = status.read_text("utf-8")
        assert "level: closed" in text and "annexe:" in text, text  # the colleague's change kept

    @pytest.mark.parametrize("answer", [b"", b"here\n", b"{\"exit\": 0}\n", b"[1, 2]\n", b"{" * 100000 + b"\n"],
                             ids=["closed", "here", "half", "not-an-object", "deep"])
    def test_no_answer_to_believe_and_the_command_does_it_all(self, write_config: WriteConfig, tmp_path: Path,
                                                                answer: bytes) -> None:
        config = write_config()
        served = _Answering(tmp_path / "state", lambda _: answer)
        code, out, err = _run(config, tmp_path / "state", ("set", "main", "closed", "-m", "fr:Fermé."))
        served.thread.join(10)
        assert code == 0 and "main: closed — written to" in out, (out, err)
        assert "level: closed" in config.with_name("status.yaml").read_text("utf-8")


class TestStateDirOf:
    """Where the command looks for the daemon's socket, from the config's lines alone."""

    @pytest.mark.parametrize(("lines", "found"), [
        ("sites: {}\n", "state"),
        ("state_dir: /var/lib/statusd\n", "/var/lib/statusd"),
        ("state_dir: run/state   # beside the config\n", "<config>/run/state"),
        ("state_dir: 'quoted'\n", None),
        ('"state_dir": x\n', None),
        ("state_dir: a\nstate_dir: b\n", None),
        ("state_dir:\n  /somewhere\n", None),
    ])
    def test_found_or_left_to_the_config(self, tmp_path: Path, lines: str, found: str | None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("STATUSD_STATE_DIR", raising=False)
        monkeypatch.delenv("STATE_DIRECTORY", raising=False)
        config = tmp_path / "statusd.yaml"
        got = handoff.state_dir_of(None, config, lines)
        assert (None if got is None else str(got).replace(str(tmp_path), "<config>")) == found

    def test_the_flag_then_the_environment_come_first(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        config, text = tmp_path / "statusd.yaml", "state_dir: /from/config\n"
        monkeypatch.setenv("STATE_DIRECTORY", "/from/systemd:/other")
        assert handoff.state_dir_of(None, config, text) == Path("/from/systemd")
        assert handoff.state_dir_of("/from/flag", config, text) == Path("/from/flag")


def test_a_daemon_that_never_answers_is_not_waited_for(write_config: WriteConfig, tmp_path: Path) -> None:
    # It costs a command ANSWER_WAIT before it makes the change itself.
    config = write_config()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        (tmp_path / "state").mkdir()
        mute.bind(str(tmp_path / "state" / nudge.NAME))
        mute.listen()
        assert handoff.ask(str(tmp_path / "state"), config, {"target": "main"}) is None
